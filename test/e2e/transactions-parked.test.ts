// A parked transaction check-back is held to the rules of a parked receive (one gateway helper,
// ParkedPolls): a tenant's parked long polls are capped (429 Throttled past it, receive and check
// counted together), a client hanging up frees the slot, and a check parked before its access key
// is revoked answers 403 within 5 s, as a receive does.
import t, { type Test } from 'tap';
import { addAccessKey, errorCode, park, revokeAccessKey, within } from '../helpers/parked-poll.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  type Key,
  type WharfOverrides,
  adminFetch,
  firstKey,
  instanceCaller,
  provisionTenant,
  startWharf,
} from '../helpers/wharf.js';

async function setup(t: Test, overrides: WharfOverrides = {}) {
  // nothing comes due while a test runs: a check parks for its whole wait
  const wharf = await startWharf(t, { transactions: { checkDelayMs: 600_000 }, ...overrides });
  const tenant = await provisionTenant(wharf);
  const keyA = firstKey(tenant);
  const call = instanceCaller(wharf, tenant);
  const created = await call(keyA, 'PUT', '/topics/txn', { messageType: 'TRANSACTION' });
  t.equal(created.status, 201);
  t.equal((await call(keyA, 'PUT', '/topics/plain', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call(keyA, 'PUT', '/groups/g', {})).status, 201);
  const check = (key: Key, waitSeconds: number, signal?: AbortSignal) =>
    call(key, 'POST', '/topics/txn/transactions/check', { waitSeconds }, signal);
  const receive = (key: Key, waitSeconds: number) =>
    call(key, 'POST', '/topics/plain/groups/g/receive', { waitSeconds });
  return { wharf, tenant, keyA, call, check, receive };
}

t.test('parked checks are capped per tenant like receives, together with them', async (t) => {
  const { wharf, keyA, check, receive } = await setup(t, {
    config: { maxParkedReceivesPerTenant: 1 },
  });
  const hangUp = new AbortController();
  const { answer: first } = await park(wharf, () => check(keyA, 20, hangUp.signal));
  const second = await check(keyA, 20);
  t.equal(second.status, 429, 'a second parked check is refused');
  t.equal(second.headers.get('retry-after'), '1');
  t.equal(await errorCode(second), 'Throttled', 'with the code a receive past the cap gets');
  const parkedReceive = await receive(keyA, 20);
  t.equal(parkedReceive.status, 429, 'a parked receive counts against the same cap');
  t.equal(await errorCode(parkedReceive), 'Throttled');
  const immediate = await check(keyA, 0);
  t.equal(immediate.status, 200, 'a check that does not wait is not bounded');
  t.same(await immediate.json(), { messages: [] });

  // the client hangs up: its slot is freed at once, in the broker and in the gateway
  hangUp.abort();
  await first.then(
    () => t.fail('an aborted request has no answer'),
    () => t.pass('the client hung up'),
  );
  await waitFor('the slot to be freed', () => wharf.broker.stats().parkedReceives === 0);
  const { answer: again } = await park(wharf, () => check(keyA, 1));
  const res = await again;
  t.equal(res.status, 200, 'a new parked check is accepted once the slot is free');
  t.same(await res.json(), { messages: [] });
});

t.test('a parked check of a revoked key answers 403 within 5 s', async (t) => {
  const { wharf, tenant, keyA, call, check } = await setup(t);
  const keyB = await addAccessKey(t, wharf, tenant);
  const { answer: parked } = await park(wharf, () => check(keyA, 20));
  await revokeAccessKey(t, wharf, tenant, keyA);
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked check still waits 5 s after revocation');
  t.equal(answer.status, 403);
  t.equal(await errorCode(answer), 'InvalidAccessKeyId');
  t.equal(wharf.broker.stats().parkedReceives, 0, 'its long-poll slot is free');
  const published = await call(keyB, 'POST', '/topics/txn/messages', {
    messages: [{ body: 'after' }],
  });
  t.equal(published.status, 200, 'a valid key still publishes');
  t.equal((await check(keyB, 0)).status, 200, 'and checks');
});

t.test('a parked check of a suspended tenant answers 403 AccessDenied', async (t) => {
  const { wharf, tenant, keyA, check } = await setup(t);
  const { answer: parked } = await park(wharf, () => check(keyA, 20));
  const suspend = await adminFetch(wharf, 'PATCH', `/admin/v1/tenants/${tenant.tenantId}`, {
    status: 'suspended',
  });
  t.equal(suspend.status, 200);
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked check still waits 5 s after suspension');
  t.equal(answer.status, 403);
  t.equal(await errorCode(answer), 'AccessDenied');
});
