// The gateway's usage meter: counts per instance and hour, a failed flush keeps its counts for
// the next one under the same markers (Redis applies each once), close flushes what is left;
// API classes of routes.
import t from 'tap';
import { pino } from 'pino';
import { MetaStore, type MarkedUsageDelta, type UsageRepository } from '../../src/meta/index.js';
import { startTestRedis } from '../helpers/redis.js';
import { UsageMeter, apiClassOf } from '../../src/gateway/usage-meter.js';

function repository(failures: number) {
  const written: MarkedUsageDelta[][] = [];
  const tried: MarkedUsageDelta[][] = [];
  let left = failures;
  const repo = {
    add: async (deltas: MarkedUsageDelta[]) => {
      tried.push(structuredClone(deltas));
      if (left-- > 0) return deltas; // every one failed (Redis away, or its answer lost)
      written.push(structuredClone(deltas));
      return [];
    },
  };
  return { repo: repo as unknown as UsageRepository, written, tried };
}

t.test('a failed flush is sent again under its markers; close flushes the rest', async (t) => {
  const { repo, written, tried } = repository(1);
  const meter = new UsageMeter(repo, pino({ level: 'silent' }), 60_000);
  const hourMs = 3_600_000 * 490_000;
  meter.count('t1', 'i1', 'messagesPublished', 3, hourMs + 10);
  meter.count('t1', 'i1', 'storageBytes', 100, hourMs + 20);
  await meter.flush();
  t.same(written, [], 'the first flush failed');
  const [first] = tried[0];
  meter.count('t1', 'i1', 'messagesPublished', 2, hourMs + 30);
  meter.count('t1', 'i1', 'storageBytes', 150, hourMs + 40);
  meter.count('t1', 'i2', 'requests', 1, hourMs + 3_600_000);
  await meter.close();
  t.equal(written.length, 1);
  const [again, later, other] = written[0];
  t.same(again, first, 'the failed bucket again, as it was, under the same marker');
  t.match(later, {
    tenantId: 't1',
    instanceId: 'i1',
    hour: 490_000,
    counters: { messagesPublished: 2, storageBytes: 150 },
  });
  t.not(later.marker, first.marker, 'what came meanwhile goes under a marker of its own');
  t.match(other, { instanceId: 'i2', hour: 490_001, counters: { requests: 1 } });
});

t.test('a flush whose answer was lost is counted once (real Redis)', async (t) => {
  const server = await startTestRedis(t);
  const meta = await MetaStore.open({ redisUrl: server.url, masterKey: 'm'.repeat(32) });
  t.teardown(() => meta.close());
  const hour = 490_000;
  const delta: MarkedUsageDelta = {
    tenantId: 't1',
    instanceId: 'i1',
    hour,
    counters: { messagesPublished: 3, storageBytes: 100 },
    marker: 'flush-1',
  };
  t.same(await meta.usage.add([delta]), []);
  // sent again: its first answer never came (Redis ran it after the deadline)
  t.same(
    await meta.usage.add([
      delta,
      { ...delta, counters: { messagesPublished: 2 }, marker: 'flush-2' },
    ]),
    [],
  );
  const [bucket] = await meta.usage.query('t1', ['i1'], hour * 3_600_000, hour * 3_600_000);
  t.equal(bucket.counters.messagesPublished, 5, 'three once, and two');
  t.equal(bucket.counters.storageBytes, 100);
  t.same([...(await meta.usage.instances('t1')).keys()], ['i1'], 'the instance indexed');
});

t.test(
  'a storage sample of 0 is written after one that was not, in its hour (real Redis)',
  async (t) => {
    const server = await startTestRedis(t);
    const meta = await MetaStore.open({ redisUrl: server.url, masterKey: 'm'.repeat(32) });
    t.teardown(() => meta.close());
    const meter = new UsageMeter(meta.usage, pino({ level: 'silent' }), 60_000);
    const now = Date.now();
    const hour = Math.floor(now / 3_600_000);
    meter.count('t1', 'i1', 'storageBytes', 152, now);
    await meter.flush();
    // its one topic deleted: the next sample finds nothing stored
    meter.count('t1', 'i1', 'storageBytes', 0, now);
    // an instance that never stored anything: its 0 samples make no bucket
    meter.count('t1', 'idle', 'storageBytes', 0, now);
    await meter.close();
    const buckets = await meta.usage.query('t1', ['i1', 'idle'], hour * 3_600_000, now);
    t.same(
      buckets.map((b) => [b.instanceId, b.counters.storageBytes]),
      [['i1', 0]],
      'the hour’s last sample is 0, and the idle instance has no bucket',
    );
  },
);

t.test('API classes', async (t) => {
  const i = '/v1/instances/:instanceId';
  for (const [method, route, cls] of [
    ['POST', `${i}/topics/:topic/messages`, 'apiCallsPublish'],
    ['POST', `${i}/topics/:topic/transactions/:transactionId/commit`, 'apiCallsPublish'],
    ['POST', `${i}/topics/:topic/groups/:group/receive`, 'apiCallsConsume'],
    ['POST', `${i}/topics/:topic/groups/:group/ack`, 'apiCallsConsume'],
    ['GET', `${i}/topics/:topic/messages`, 'apiCallsQuery'],
    ['GET', `${i}/topics/:topic/stats`, 'apiCallsQuery'],
    ['GET', `${i}/usage`, 'apiCallsQuery'],
    ['PUT', `${i}/topics/:topic`, 'apiCallsManage'],
    ['DELETE', `${i}/alarms/:alarmId`, 'apiCallsManage'],
  ] as const) {
    t.equal(apiClassOf(method, route), cls, `${method} ${route}`);
  }
});
