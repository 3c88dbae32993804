import t, { type Test } from 'tap';
import { WharfError } from '../../src/errors.js';
import { MetaStore } from '../../src/meta/index.js';
import {
  ACCESS_KEY,
  ALARM,
  GROUP,
  PENDING_DROP,
  PRIVATE_JWK,
  TENANT,
  TOPIC,
  decodeRecord,
  encodeRecord,
} from '../../src/meta/records.js';
import { startTestRedis } from '../helpers/redis.js';

const topic = {
  tenantId: 'ten-a',
  instanceId: 'MQ_INST_A',
  topic: 'orders',
  messageType: 'FIFO',
  queueCount: 4,
  retentionHours: 72,
  dedupWindowMs: 600_000,
  createdAt: 1,
};
const at = { key: 'wharf:{ten-a}:i:MQ_INST_A:topics', field: 'orders' };

function internal(t: Test, fn: () => unknown, message: RegExp, what: string) {
  try {
    fn();
    t.fail(`${what}: throws`);
  } catch (err) {
    t.ok(err instanceof WharfError, `${what}: a WharfError`);
    t.equal((err as WharfError).code, 'Internal', `${what}: Internal`);
    t.match((err as WharfError).message, message, `${what}: names the key and the problem`);
  }
}

t.test('a record without a version is v1; new records carry v: 1, answers never', async (t) => {
  t.same(decodeRecord(TOPIC, JSON.stringify(topic), at), topic);
  const encoded = encodeRecord(topic);
  t.equal((JSON.parse(encoded) as { v: number }).v, 1);
  t.same(decodeRecord(TOPIC, encoded, at), topic, 'v is stripped');
  t.same(
    decodeRecord(TOPIC, encodeRecord({ ...topic, spec: '[4,72,600000]' }), at),
    topic,
    'the spec kept for the Lua script is dropped',
  );
  const group = {
    tenantId: 'ten-a',
    instanceId: 'MQ_INST_A',
    group: 'g',
    deliveryMode: 'CLUSTERING',
    maxDeliveryAttempts: 16,
    invisibleSeconds: 30,
    createdAt: 1,
  };
  t.same(decodeRecord(GROUP, JSON.stringify(group), at), group, 'optional fields stay absent');
  for (const retryPolicy of [
    { backoffSeconds: [1, 2] },
    { exponential: { initialSeconds: 1, multiplier: 2, maxSeconds: 60 } },
  ]) {
    const withPolicy = { ...group, retryPolicy, incarnation: 'abc' };
    t.same(decodeRecord(GROUP, encodeRecord(withPolicy), at), withPolicy);
  }
  const jwk = { kty: 'EC', crv: 'P-256', d: 'x' };
  t.same(decodeRecord(PRIVATE_JWK, JSON.stringify(jwk), at), jwk, 'a JWK is kept whole');
});

t.test(
  'a future version, bad JSON or a malformed field is an Internal error naming the key',
  async (t) => {
    const key = /wharf:\{ten-a\}:i:MQ_INST_A:topics \[orders\]/;
    internal(t, () => decodeRecord(TOPIC, encodeRecord({ ...topic, v: 2 }), at), /version 2/, 'v2');
    internal(t, () => decodeRecord(TOPIC, JSON.stringify({ ...topic, v: 2 }), at), key, 'v2 key');
    internal(
      t,
      () => decodeRecord(TOPIC, JSON.stringify({ ...topic, v: '1' }), at),
      /"1"/,
      'v "1"',
    );
    internal(t, () => decodeRecord(TOPIC, '{"topic":', at), /is not JSON/, 'bad JSON');
    internal(t, () => decodeRecord(TOPIC, '[1]', at), /is not an object/, 'an array');
    internal(
      t,
      () => decodeRecord(TOPIC, JSON.stringify({ ...topic, queueCount: '4' }), at),
      /topic record at .*topics \[orders\]: field queueCount is not an integer/,
      'a string count',
    );
    internal(
      t,
      () => decodeRecord(TOPIC, JSON.stringify({ ...topic, messageType: 'BULK' }), at),
      /field messageType is not one of NORMAL, FIFO, DELAY, TRANSACTION/,
      'an unknown message type',
    );
    const { dedupWindowMs: _d, ...missing } = topic;
    internal(
      t,
      () => decodeRecord(TOPIC, JSON.stringify(missing), at),
      /field dedupWindowMs is not a number/,
      'a missing field',
    );
    internal(
      t,
      () =>
        decodeRecord(
          TENANT,
          JSON.stringify({
            tenantId: 'ten-a',
            name: 'a',
            status: 'active',
            quotas: { publishPerSecond: 1, consumePerSecond: 1, maxTopics: null, maxGroups: 1 },
            createdAt: 1,
          }),
          { key: 'wharf:{ten-a}:tenant' },
        ),
      /tenant record at wharf:\{ten-a\}:tenant: field quotas.maxTopics is not a number/,
      'a nested field, key without a hash field',
    );
    internal(
      t,
      () =>
        decodeRecord(
          ACCESS_KEY,
          JSON.stringify({
            accessKeyId: 'WK',
            tenantId: 'ten-a',
            permissions: [{ instance: '*', actions: ['publish', 'delete'] }],
            createdAt: 1,
            sealedSecret: 's',
          }),
          at,
        ),
      /field permissions\[0\]\.actions\[1\] is not one of/,
      'an array item',
    );
    internal(
      t,
      () =>
        decodeRecord(
          GROUP,
          JSON.stringify({
            tenantId: 'ten-a',
            instanceId: 'MQ_INST_A',
            group: 'g',
            deliveryMode: 'CLUSTERING',
            maxDeliveryAttempts: 16,
            invisibleSeconds: 30,
            retryPolicy: { backoffSeconds: {} },
            createdAt: 1,
          }),
          at,
        ),
      /field retryPolicy\.backoffSeconds is not an array/,
      'a retry policy',
    );
    internal(
      t,
      () => decodeRecord(ALARM, JSON.stringify({ alarmId: 'a' }), at),
      /alarm record .*field tenantId is not a string/,
      'an alarm',
    );
    internal(t, () => decodeRecord(PRIVATE_JWK, '"x"', at), /is not an object/, 'a JWK');
  },
);

t.test('a pending drop is one of its three kinds, checked by its kind', async (t) => {
  const group = {
    tenantId: 'ten-a',
    instanceId: 'MQ_INST_A',
    group: 'g',
    deliveryMode: 'CLUSTERING',
    maxDeliveryAttempts: 16,
    invisibleSeconds: 30,
    createdAt: 1,
    incarnation: 'abc',
  };
  const base = { dropId: 'd1', droppedAtMs: 5 };
  const drops = [
    { kind: 'topic', ...base, topic },
    { kind: 'group', ...base, group },
    { kind: 'instance', ...base, tenantId: 'ten-a', instanceId: 'MQ_INST_A' },
  ];
  for (const drop of drops)
    t.same(decodeRecord(PENDING_DROP, encodeRecord(drop), at), drop, `a ${drop.kind} drop`);
  internal(
    t,
    () => decodeRecord(PENDING_DROP, JSON.stringify({ ...base, kind: 'tenant' }), at),
    /pending drop record at .*: field kind is not one of topic, group, instance/,
    'an unknown kind',
  );
  internal(
    t,
    () => decodeRecord(PENDING_DROP, JSON.stringify({ kind: 'topic', ...base, group }), at),
    /field topic is not an object/,
    'a topic drop without its topic',
  );
});

t.test('repositories read records written without a version and refuse bad ones', async (t) => {
  const redis = await startTestRedis(t);
  const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
  t.teardown(() => meta.close());

  const tenant = await meta.tenants.create('legacy');
  const instance = await meta.createInstance(tenant.tenantId, 'i');
  const topicsKey = meta.keys.topics(tenant.tenantId, instance.instanceId);
  const stored = await meta.putTopic({
    tenantId: tenant.tenantId,
    instanceId: instance.instanceId,
    topic: 'orders',
    messageType: 'NORMAL',
    queueCount: 2,
    retentionHours: 1,
    dedupWindowMs: 1000,
    createdAt: 5,
  });
  const raw = JSON.parse((await meta.redis.hget(topicsKey, 'orders'))!) as Record<string, unknown>;
  t.equal(raw.v, 1, 'written with its version');
  t.notOk('v' in stored.record, 'not in the answer');

  // as written before versions existed
  const { v: _v, ...legacy } = raw;
  await meta.redis.hset(topicsKey, 'orders', JSON.stringify(legacy));
  t.same(await meta.topics.get(tenant.tenantId, instance.instanceId, 'orders'), stored.record);
  const again = await meta.putTopic({ ...stored.record, createdAt: 9 });
  t.equal(again.status, 'unchanged', 'the Lua script still compares the spec');

  const tenantJson = JSON.parse((await meta.redis.get(meta.keys.tenant(tenant.tenantId)))!) as {
    v?: number;
  };
  delete tenantJson.v;
  await meta.redis.set(meta.keys.tenant(tenant.tenantId), JSON.stringify(tenantJson));
  const patched = await meta.patchTenant(tenant.tenantId, { status: 'suspended' });
  t.equal(patched.status, 'suspended', 'the patch script keeps working on a v1 record');
  t.notOk('v' in patched);

  await meta.redis.hset(topicsKey, 'broken', JSON.stringify({ ...legacy, v: 7 }));
  await t.rejects(meta.topics.list(tenant.tenantId, instance.instanceId), {
    code: 'Internal',
    message: new RegExp(`${topicsKey.replace(/[{}]/g, '\\$&')} \\[broken\\].*version 7`),
  });
});
