import t from 'tap';
import { MetaStore } from '../../src/meta/index.js';
import { safeUrl } from '../../src/meta/meta-store.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

t.test('repositories against a real Redis', async (t) => {
  const redis = await startTestRedis(t);
  const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
  t.teardown(() => meta.close());

  // a name left by a creation that died before its record is taken over
  await meta.redis.hset(meta.keys.tenantNames(), 'a', 'ten-deaddeaddeaddeaddead');
  const tenant = await meta.tenants.create('a');
  await t.rejects(meta.tenants.create('a'), { code: 'AlreadyExists' });
  t.equal(await meta.tenant(tenant.tenantId).then((x) => x?.name), 'a');
  await t.rejects(meta.instances.create('ten-aaaaaaaaaaaaaaaaaaaa', 'x'), {
    code: 'TenantNotFound',
  });
  await t.rejects(meta.accessKeys.create('ten-aaaaaaaaaaaaaaaaaaaa', []), {
    code: 'TenantNotFound',
  });
  const instance = await meta.createInstance(tenant.tenantId, 'i');
  await t.rejects(
    meta.putTopic({
      tenantId: tenant.tenantId,
      instanceId: 'MQ_INST_AAAAAAAAAAAAAAAAAAAA',
      topic: 't',
      messageType: 'NORMAL',
      queueCount: 1,
      retentionHours: 1,
      dedupWindowMs: 1000,
      createdAt: 1,
    }),
    { code: 'InstanceNotFound' },
  );
  t.equal((await meta.instanceList(tenant.tenantId)).length, 1);
  t.equal(await meta.revokeAccessKey(tenant.tenantId, 'WKAAAAAAAAAAAAAAAAAA'), false);
  await t.rejects(meta.patchTenant('ten-aaaaaaaaaaaaaaaaaaaa', { status: 'suspended' }), {
    code: 'TenantNotFound',
  });
  t.same(await meta.patchTenant(tenant.tenantId, {}), tenant);
  t.equal(await meta.deleteTenant('ten-aaaaaaaaaaaaaaaaaaaa', () => Promise.resolve()), null);

  // JWT signing keys: created once, then reused; the private half sealed
  const k1 = await meta.signingKeys.current();
  const k2 = await meta.signingKeys.current();
  t.equal(k1.kid, k2.kid);
  const stored = await meta.redis.hget(meta.keys.jwtKeys(), k1.kid);
  t.notMatch(stored!, String(k1.privateJwk.d));
  t.same(
    (await meta.signingKeys.publicKeys()).map((k) => k.kid),
    [k1.kid],
  );

  // another process's invalidation reaches this one
  await meta.instance(tenant.tenantId, instance.instanceId);
  const other = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
  t.teardown(() => other.close());
  await meta.redis.hdel(meta.keys.instances(tenant.tenantId), instance.instanceId);
  t.ok(await meta.instance(tenant.tenantId, instance.instanceId), 'still cached');
  await other.invalidate([`i|${tenant.tenantId}|${instance.instanceId}|`]);
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = (await meta.instance(tenant.tenantId, instance.instanceId)) === null;
    if (!gone) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(gone, 'invalidated through pub/sub');
  await meta.redis.publish(meta.keys.invalidationChannel(), 'not json');
});

t.test('an unreachable Redis is a clear Unavailable', async (t) => {
  const { freePort } = await import('../../src/meta/index.js');
  const port = await freePort();
  await t.rejects(
    MetaStore.open({ redisUrl: `redis://127.0.0.1:${port}`, masterKey: 'm'.repeat(32) }),
    { code: 'Unavailable' },
  );
});

t.test('a Redis URL is logged without its password', async (t) => {
  t.equal(safeUrl('redis://user:pw@h:1/0'), 'redis://user:***@h:1/0');
  t.equal(safeUrl('::'), 'the configured URL');
});

t.test(
  'two gateways creating one tenant name at once: one tenant, the other refused',
  async (t) => {
    const redis = await startTestRedis(t);
    const a = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
    const b = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
    t.teardown(async () => {
      await a.close();
      await b.close();
    });
    // gateway A stalls at its first write (a GC pause, a slow link) until B's creation is over
    let bDone!: () => void;
    const bOver = new Promise<void>((resolve) => (bDone = resolve));
    let stalled!: () => void;
    const aStalled = new Promise<void>((resolve) => (stalled = resolve));
    const multi = a.redis.multi.bind(a.redis) as () => { exec: () => Promise<unknown> };
    (a.redis as unknown as { multi: () => unknown }).multi = () => {
      (a.redis as unknown as { multi: () => unknown }).multi = multi;
      const pipeline = multi();
      const exec = pipeline.exec.bind(pipeline);
      pipeline.exec = async () => {
        stalled();
        await bOver;
        return exec();
      };
      return pipeline;
    };
    const first = a.tenants.create('acme');
    await aStalled;
    const second = b.tenants.create('acme').finally(() => bDone());
    const results = await Promise.allSettled([first, second]);
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one creation succeeds');
    t.match(
      results.find((r) => r.status === 'rejected'),
      { reason: { code: 'AlreadyExists' } },
    );
    const named = (await a.tenants.list()).filter((tenant) => tenant.name === 'acme');
    t.equal(named.length, 1, 'one tenant holds the name');
    t.equal(await a.redis.hget(a.keys.tenantNames(), 'acme'), named[0].tenantId);
  },
);

t.test(
  "a tenant's instances are dropped from the brokers side by side, not one drop after another",
  { timeout: 20_000 }, // without side-by-side drops the first one waits for ever
  async (t) => {
    const redis = await startTestRedis(t);
    const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
    t.teardown(() => meta.close());
    const tenant = await meta.tenants.create('acme');
    const names = ['a', 'b', 'c'];
    for (const name of names) await meta.createInstance(tenant.tenantId, name);
    // a broker that answers every drop late: each drop waits until all three were sent
    const started: string[] = [];
    let allStarted!: () => void;
    const everyDropSent = new Promise<void>((resolve) => (allStarted = resolve));
    const deleted = await meta.deleteTenant(tenant.tenantId, async (instance) => {
      started.push(instance.instanceId);
      if (started.length === names.length) allStarted();
      await everyDropSent;
    });
    t.equal(deleted?.tenantId, tenant.tenantId);
    t.equal(started.length, names.length, 'each instance dropped once');
    t.equal(await meta.tenant(tenant.tenantId), null);
    t.same(await meta.instances.list(tenant.tenantId), []);
  },
);

t.test('an instance is created with its data key: a backup holding it holds the key', async (t) => {
  const redis = await startTestRedis(t);
  const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
  t.teardown(() => meta.close());
  const tenant = await meta.tenants.create('a');
  const instance = await meta.createInstance(tenant.tenantId, 'i');
  // no publish yet: a Redis backup taken now must still open the bodies published later
  const key = await meta.dataKeys.load(tenant.tenantId, instance.instanceId, false);
  t.ok(key !== null && key.length === 32, 'the key exists before the first publish');
  t.same(
    await meta.dataKeys.load(tenant.tenantId, instance.instanceId, true),
    key,
    'the first publish uses it, makes no other',
  );
  // a name taken refuses the instance and makes no key
  await t.rejects(meta.createInstance(tenant.tenantId, 'i'), { code: 'AlreadyExists' });
  const keys = await meta.redis.keys('*data-key*');
  t.equal(keys.length, 1, 'one data key');
});

t.test(
  'an event loop that stood still past the command deadline does not fail the commands Redis answered',
  async (t) => {
    const redis = await startTestRedis(t);
    const meta = await MetaStore.open({
      redisUrl: redis.url,
      masterKey: 'm'.repeat(32),
      commandTimeoutMs: 200,
    });
    t.teardown(() => meta.close());
    await meta.redis.set('k', 'v');
    // commands sent, then the loop stands still (a long GC pause, an overloaded machine) for
    // twice their deadline while Redis answers them
    const pending = [
      meta.redis.get('k'),
      meta.redis.incr('n'),
      meta.redis.pipeline().get('k').exec(),
      meta.ping(100).then(() => 'PONG'),
    ];
    const stillUntil = performance.now() + 400;
    while (performance.now() < stillUntil) {
      // the stall itself: nothing else runs
    }
    const [got, incremented, piped, ping] = await Promise.all(pending);
    t.equal(ping, 'PONG', '/readyz: the PING answered during the stall holds');
    t.equal(got, 'v', 'answered, not "Command timed out"');
    t.equal(incremented, 1);
    t.same(piped, [[null, 'v']]);
    t.equal(await meta.redis.get('k'), 'v', 'the connection was not dropped');

    // a stalled server still fails a command at its deadline
    redis.process.kill('SIGSTOP');
    t.teardown(() => redis.process.kill('SIGCONT'));
    await t.rejects(meta.redis.get('k'), /Command timed out/);
    redis.process.kill('SIGCONT');
    await waitFor('the connection back', async () =>
      meta.redis.get('k').then(
        (v) => v === 'v',
        () => false,
      ),
    );
  },
);
