// Redis outages, caused for real: the test's own redis-server is SIGKILLed (gone: connections
// refused) or SIGSTOPped (stalled: connections open, nothing answers). Requests that need Redis
// must answer 503 Unavailable with retry-after well before the old 12–15 s hang (each fetch has a
// 5 s client timeout, a behavioural deadline, not a timing assert), /readyz must fail, warm-cache
// publishes and receives keep working, and the node recovers by itself when Redis is back.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../src/meta/index.js';
import {
  adminFetch,
  json,
  provisionTenant,
  signedFetch,
  startWharf,
  type ProvisionedTenant,
  type TestWharf,
} from '../helpers/wharf.js';
import { eventually } from '../helpers/eventually.js';

/** Well under the 12–15 s stalls of issue #8, well over the 2 s the answer must take. */
const CLIENT_TIMEOUT_MS = 5_000;

function bounded(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
}

/** Awaits an answer and notes how long it took (a figure for the log, never asserted). */
async function timed(t: Test, what: string, answer: () => Promise<Response>): Promise<Response> {
  const started = performance.now();
  const res = await answer();
  t.comment(`${what} answered ${res.status} in ${Math.round(performance.now() - started)} ms`);
  return res;
}

async function setup(t: Test) {
  // The longest cache the config allows, so that the warm entries outlive the test's steps.
  const wharf = await startWharf(t, { cacheTtlMs: 5000 });
  const warm = await provisionTenant(wharf);
  const cold = await provisionTenant(wharf);
  const call = (who: ProvisionedTenant, method: string, path: string, body?: unknown) =>
    signedFetch(wharf.url, {
      method,
      path: `/v1/instances/${who.instanceId}${path}`,
      ...(body === undefined ? {} : { body }),
      ak: who.accessKeyId,
      sk: who.accessKeySecret,
    });
  for (const who of [warm, cold]) {
    t.equal((await call(who, 'PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    t.equal((await call(who, 'PUT', '/groups/billing', {})).status, 201);
  }
  return { wharf, warm, cold, call };
}

/** A publish and a receive, so that credential, tenant, instance, topic and group are cached. */
async function warmUp(
  call: Awaited<ReturnType<typeof setup>>['call'],
  who: ProvisionedTenant,
  t: Test,
) {
  const published = await call(who, 'POST', '/topics/orders/messages', {
    messages: [{ body: 'before' }],
  });
  t.equal(published.status, 200);
  const received = await call(who, 'POST', '/topics/orders/groups/billing/receive', {
    maxMessages: 1,
  });
  t.equal(received.status, 200);
}

async function assertUnavailable(t: Test, res: Response, what: string) {
  t.equal(res.status, 503, `${what}: 503`);
  t.ok(Number(res.headers.get('retry-after')) >= 1, `${what}: retry-after`);
  t.equal((await json(res)).error.code, 'Unavailable', `${what}: Unavailable`);
}

/** A cold request (the credential was never cached), signed, with the client timeout. */
function coldRequest(wharf: TestWharf, cold: ProvisionedTenant): Promise<Response> {
  return Promise.race([
    signedFetch(wharf.url, {
      path: `/v1/instances/${cold.instanceId}/topics`,
      ak: cold.accessKeyId,
      sk: cold.accessKeySecret,
    }),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('no answer within the client timeout')), CLIENT_TIMEOUT_MS),
    ),
  ]);
}

t.test('Redis killed: fast 503s, warm publishes and receives go on, recovery', async (t) => {
  const { wharf, warm, cold, call } = await setup(t);
  const redis = wharf.redis!;
  await warmUp(call, warm, t);
  redis.process.kill('SIGKILL');
  await eventually('redis-server to die', () =>
    Promise.resolve(redis.process.exitCode !== null || redis.process.signalCode !== null),
  );

  // Served from the warm cache, no Redis round trip.
  const published = await call(warm, 'POST', '/topics/orders/messages', {
    messages: [{ body: 'during the outage' }],
  });
  t.equal(published.status, 200, 'warm publish during the outage');
  const received = await call(warm, 'POST', '/topics/orders/groups/billing/receive', {
    maxMessages: 8,
  });
  t.equal(received.status, 200, 'warm receive during the outage');
  t.ok(
    ((await json(received)).messages as { body: string }[]).some(
      (m) => m.body === 'during the outage',
    ),
  );

  await assertUnavailable(
    t,
    await timed(t, 'cold request', () => coldRequest(wharf, cold)),
    'cold tenant-plane request',
  );
  await assertUnavailable(
    t,
    await bounded(`${wharf.url}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${wharf.adminToken}` },
    }),
    'operator list of tenants',
  );
  await assertUnavailable(
    t,
    await timed(t, '/readyz', () => bounded(`${wharf.url}/readyz`)),
    '/readyz',
  );

  // Redis comes back (empty: the test server keeps no files) on the same port.
  const again = await startRedisServer({ dir: wharf.dir, port: redis.port });
  t.teardown(() => again.stop());
  await eventually(
    '/readyz to turn 200',
    async () => (await bounded(`${wharf.url}/readyz`)).status === 200,
  );
  const created = await adminFetch(wharf, 'POST', '/admin/v1/tenants', { name: 'after-outage' });
  t.equal(created.status, 201, 'writes work again without a restart');
  // Invalidations from other gateways arrive again: the subscriber is back on its channel.
  const probe = new Redis(again.url);
  t.teardown(() => probe.disconnect());
  const channel = wharf.meta.keys.invalidationChannel();
  await eventually('the invalidation subscriber to resubscribe', async () => {
    const [, subscribers] = (await probe.pubsub('NUMSUB', channel)) as [string, number];
    return subscribers === 1;
  });
  t.pass('the invalidation subscriber is back');
});

t.test('Redis stalled (SIGSTOP): fast 503s and /readyz fails, then recovers', async (t) => {
  const { wharf, cold } = await setup(t);
  const redis = wharf.redis!;
  redis.process.kill('SIGSTOP');
  t.teardown(() => redis.process.kill('SIGCONT'));

  await assertUnavailable(
    t,
    await timed(t, '/readyz', () => bounded(`${wharf.url}/readyz`)),
    '/readyz',
  );
  await assertUnavailable(
    t,
    await timed(t, 'cold request', () => coldRequest(wharf, cold)),
    'cold tenant-plane request',
  );
  await assertUnavailable(
    t,
    await bounded(`${wharf.url}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${wharf.adminToken}` },
    }),
    'operator list of tenants',
  );

  redis.process.kill('SIGCONT');
  await eventually(
    '/readyz to turn 200',
    async () => (await bounded(`${wharf.url}/readyz`)).status === 200,
  );
  await eventually(
    'the cold request to succeed',
    async () => (await coldRequest(wharf, cold)).status === 200,
  );
});

t.test('Redis refusing writes (out of memory, noeviction): 503, not 500', async (t) => {
  const { wharf, warm, cold, call } = await setup(t);
  await warmUp(call, warm, t);
  const admin = new Redis(wharf.redisUrl);
  t.teardown(() => admin.disconnect());
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', '1');
  t.teardown(() => admin.config('SET', 'maxmemory', '0'));
  await assertUnavailable(
    t,
    await adminFetch(wharf, 'POST', '/admin/v1/tenants', { name: 'while-full' }),
    'a tenant created (a MULTI)',
  );
  await assertUnavailable(
    t,
    await call(warm, 'PUT', '/topics/refused', { messageType: 'NORMAL' }),
    'a topic created (a script)',
  );
  // an instance without a data key (made before keys came with instances) gets one on its first
  // publish: a script the broker runs
  await admin.del(wharf.meta.keys.dataKey(cold.tenantId, cold.instanceId));
  await assertUnavailable(
    t,
    await call(cold, 'POST', '/topics/orders/messages', { messages: [{ body: 'keyless' }] }),
    'a publish that makes its instance’s data key',
  );
  const published = await call(warm, 'POST', '/topics/orders/messages', {
    messages: [{ body: 'while full' }],
  });
  t.equal(published.status, 200, 'a warm publish needs no Redis write');
  await admin.config('SET', 'maxmemory', '0');
  const created = await adminFetch(wharf, 'POST', '/admin/v1/tenants', { name: 'after-full' });
  t.equal(created.status, 201, 'writes work again');
});

t.test('a tenant or access key create answered 503 in a stall leaves nothing behind', async (t) => {
  const { wharf, cold } = await setup(t);
  const redis = wharf.redis!;
  const keysOf = async (tenantId: string) =>
    (
      (await json(await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenantId}/access-keys`)))
        .accessKeys as { accessKeyId: string }[]
    ).map((k) => k.accessKeyId);
  const keysBefore = await keysOf(cold.tenantId);
  redis.process.kill('SIGSTOP');
  t.teardown(() => redis.process.kill('SIGCONT'));
  // the writes are sent and miss their deadline; Redis runs them once it goes on
  await assertUnavailable(
    t,
    await adminFetch(wharf, 'POST', '/admin/v1/tenants', { name: 'stalled' }),
    'tenant create in the stall',
  );
  await assertUnavailable(
    t,
    await adminFetch(wharf, 'POST', `/admin/v1/tenants/${cold.tenantId}/access-keys`, {}),
    'access key create in the stall',
  );
  redis.process.kill('SIGCONT');
  await eventually(
    '/readyz to turn 200',
    async () => (await bounded(`${wharf.url}/readyz`)).status === 200,
  );
  const named = async (name: string) =>
    (
      (await json(await adminFetch(wharf, 'GET', '/admin/v1/tenants'))).tenants as {
        name: string;
      }[]
    ).filter((tenant) => tenant.name === name).length;
  t.equal(await named('stalled'), 0, 'no tenant from the create answered 503');
  t.same(await keysOf(cold.tenantId), keysBefore, 'no access key from the create answered 503');
  t.equal((await adminFetch(wharf, 'POST', '/admin/v1/tenants', { name: 'stalled' })).status, 201);
  t.equal(await named('stalled'), 1, 'the retry made the one tenant of that name');
});
