// A parked long poll ends when its credential stops holding (issue #8, defect 5): a receive parked
// before its key is revoked or its tenant suspended answers 403 within 5 s and takes no message
// after that; what was published meanwhile stays receivable by a valid key, not stuck in flight.
import t, { type Test } from 'tap';
import { addAccessKey, errorCode, park, revokeAccessKey, within } from '../helpers/parked-poll.js';
import { TokenService } from '../../src/gateway/plugins/jwt.js';
import { DEFAULT_PERMISSIONS } from '../../src/meta/index.js';
import { waitFor, waitUntilPast } from '../helpers/wait-for.js';
import {
  type Key,
  type ProvisionedTenant,
  type TestWharf,
  adminFetch,
  firstKey,
  instanceCaller,
  provisionTenant,
  signedFetch,
  startWharf,
} from '../helpers/wharf.js';

async function setup(t: Test) {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const keyA = firstKey(tenant);
  const keyB = await addAccessKey(t, wharf, tenant);
  const call = instanceCaller(wharf, tenant);
  t.equal((await call(keyA, 'PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call(keyA, 'PUT', '/groups/g', {})).status, 201);
  const receive = (key: Key, waitSeconds: number) =>
    call(key, 'POST', '/topics/orders/groups/g/receive', { waitSeconds, maxMessages: 32 });
  const publish = (key: Key, body: string) =>
    call(key, 'POST', '/topics/orders/messages', { messages: [{ body }] });
  return { wharf, tenant, keyA, keyB, call, receive, publish };
}

async function messagesOf(res: Response) {
  t.equal(res.status, 200);
  return ((await res.json()) as { messages: { body: string; receiptHandle: string }[] }).messages;
}

t.test('a parked receive of a revoked key answers 403 within 5 s', async (t) => {
  const { wharf, tenant, keyA, keyB, receive, publish } = await setup(t);
  const { answer: parked } = await park(wharf, () => receive(keyA, 20));
  await revokeAccessKey(t, wharf, tenant, keyA);
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked receive still waits 5 s after revocation');
  t.equal(answer.status, 403);
  t.equal(await errorCode(answer), 'InvalidAccessKeyId');
  t.equal(wharf.broker.stats().parkedReceives, 0, 'its long-poll slot is free');
  t.equal((await publish(keyB, 'after')).status, 200);
  const got = await messagesOf(await receive(keyB, 5));
  t.match(got, [{ body: 'after' }], 'a valid key receives what was published after');
});

t.test(
  'a message published right after revocation is not kept by the revoked receive',
  async (t) => {
    const { wharf, tenant, keyA, keyB, receive, publish } = await setup(t);
    const { answer: parked } = await park(wharf, () => receive(keyA, 20));
    await revokeAccessKey(t, wharf, tenant, keyA);
    t.equal((await publish(keyB, 'racing')).status, 200);
    const answer = await within(parked, 5000);
    if (answer === 'deadline') return t.fail('the parked receive still waits 5 s after revocation');
    t.equal(answer.status, 403, 'the revoked receive gets no message');
    const got = await messagesOf(await receive(keyB, 5));
    t.match(got, [{ body: 'racing' }], 'the message is receivable at once, not in flight');
    t.equal(wharf.broker.stats().inflight, 1, 'and in flight only for key B');
  },
);

t.test('a parked receive of a suspended tenant answers 403 and takes nothing', async (t) => {
  const { wharf, tenant, keyA, receive } = await setup(t);
  const { answer: parked } = await park(wharf, () => receive(keyA, 20));
  const suspend = await adminFetch(wharf, 'PATCH', `/admin/v1/tenants/${tenant.tenantId}`, {
    status: 'suspended',
  });
  t.equal(suspend.status, 200);
  // no key of a suspended tenant can publish: the message comes straight to the broker
  const topic = await wharf.meta.topic(tenant.tenantId, tenant.instanceId, 'orders');
  if (topic === null) return t.fail('topic missing');
  await wharf.brokers.publish(topic, [
    { body: Buffer.from('while suspended'), bodyEncoding: 'utf8' },
  ]);
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked receive still waits 5 s after suspension');
  t.equal(answer.status, 403);
  t.equal(await errorCode(answer), 'AccessDenied');
  const resume = await adminFetch(wharf, 'PATCH', `/admin/v1/tenants/${tenant.tenantId}`, {
    status: 'active',
  });
  t.equal(resume.status, 200);
  const got = await messagesOf(await receive(keyA, 5));
  t.match(got, [{ body: 'while suspended' }], 'the message waited for the group, not in flight');
});

t.test('a parked receive with a bearer token of a revoked key answers 403', async (t) => {
  const { wharf, tenant, keyA, keyB, publish } = await setup(t);
  const issued = await signedFetch(wharf.url, {
    method: 'POST',
    path: '/v1/tokens',
    body: { ttlSeconds: 600 },
    ...keyA,
  });
  t.ok(issued.ok, 'token issued');
  const { token } = (await issued.json()) as { token: string };
  const { answer: parked } = await park(wharf, () =>
    fetch(`${wharf.url}/v1/instances/${tenant.instanceId}/topics/orders/groups/g/receive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ waitSeconds: 20 }),
    }),
  );
  await revokeAccessKey(t, wharf, tenant, keyA);
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked receive still waits 5 s after revocation');
  t.equal(answer.status, 403);
  t.equal(await errorCode(answer), 'InvalidToken');
  t.equal((await publish(keyB, 'after')).status, 200);
});

t.test('a receive and a stream waiting when their tenant is deleted answer 403', async (t) => {
  const { wharf, tenant, keyA, call, receive } = await setup(t);
  const { answer: parked } = await park(wharf, () => receive(keyA, 20));
  const stream = await call(keyA, 'POST', '/topics/orders/groups/g/receive-stream', {
    durationSeconds: 20,
  });
  t.equal(stream.status, 200);
  const deleted = await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`);
  t.equal(deleted.status, 204);
  // the code a new request gets: its key went with the tenant
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked receive still waits 5 s after the delete');
  t.equal(answer.status, 403, 'not an empty 200');
  t.equal(await errorCode(answer), 'InvalidAccessKeyId');
  const lines = await within(stream.text(), 5000);
  if (lines === 'deadline') return t.fail('the stream still runs 5 s after the delete');
  t.match(lines.trim().split('\n').pop(), /"end":"ERROR","error":\{"code":"InvalidAccessKeyId"/);
});

/** A bearer token of `key` that expires `ttlSeconds` (whole seconds, from the current one) from
 *  now: minted as the token route does, below the route's 60 s minimum. */
async function shortToken(wharf: TestWharf, tenant: ProvisionedTenant, key: Key, ttl: number) {
  const found = await wharf.meta.tenant(tenant.tenantId);
  if (found === null) throw new Error('tenant missing');
  return new TokenService(wharf.meta).issue(
    {
      tenantId: tenant.tenantId,
      tenant: found,
      accessKeyId: key.ak,
      permissions: DEFAULT_PERMISSIONS,
      keyPermissions: DEFAULT_PERMISSIONS,
      via: 'sigv4',
    },
    ttl,
    undefined,
  );
}

t.test('a parked receive and a stream of a bearer token end once it expires', async (t) => {
  const { wharf, tenant, keyA, keyB, receive, publish } = await setup(t);
  const { token, expiresAt } = await shortToken(wharf, tenant, keyA, 3);
  const bearer = (path: string, body: unknown) =>
    fetch(`${wharf.url}/v1/instances/${tenant.instanceId}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const stream = await bearer('/topics/orders/groups/g/receive-stream', { durationSeconds: 30 });
  t.equal(stream.status, 200, 'the stream opens while the token holds');
  const { answer: parked } = await park(wharf, () =>
    bearer('/topics/orders/groups/g/receive', { waitSeconds: 20 }),
  );
  await waitUntilPast(expiresAt);
  t.equal((await publish(keyB, 'after expiry')).status, 200);
  const answer = await within(parked, 5000);
  if (answer === 'deadline') return t.fail('the parked receive still waits 5 s after expiry');
  t.equal(answer.status, 403, 'the parked receive gets no message');
  t.equal(await errorCode(answer), 'InvalidToken');
  const lines = await within(stream.text(), 5000);
  if (lines === 'deadline') return t.fail('the stream still runs 5 s after expiry');
  t.match(lines, /^\{"end":"ERROR","error":\{"code":"InvalidToken"/, 'the stream took nothing');
  const got = await messagesOf(await receive(keyB, 5));
  t.match(got, [{ body: 'after expiry' }], 'the message is receivable by a valid key');
});

t.test('a stream held at its credit ends when its key is revoked', async (t) => {
  const { wharf, tenant, keyA, call, publish } = await setup(t);
  const stream = await call(keyA, 'POST', '/topics/orders/groups/g/receive-stream', {
    durationSeconds: 30,
    maxOutstanding: 1,
  });
  t.equal(stream.status, 200);
  t.equal((await publish(keyA, 'held')).status, 200);
  await waitFor('the message on the stream', () => wharf.broker.stats().inflight === 1);
  await revokeAccessKey(t, wharf, tenant, keyA);
  const lines = await within(stream.text(), 5000);
  if (lines === 'deadline') return t.fail('the stream at its credit still runs 5 s after');
  const last = lines.trim().split('\n').pop();
  t.match(last, /"end":"ERROR","error":\{"code":"InvalidAccessKeyId"/);
});
