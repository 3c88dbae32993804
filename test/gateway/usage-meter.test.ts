// The gateway's usage meter: counts per instance and hour, a failed flush keeps its counts for
// the next one, close flushes what is left; API classes of routes.
import t from 'tap';
import { pino } from 'pino';
import type { UsageDelta, UsageRepository } from '../../src/meta/index.js';
import { UsageMeter, apiClassOf } from '../../src/gateway/usage-meter.js';

function repository(failures: number) {
  const written: UsageDelta[][] = [];
  let left = failures;
  const repo = {
    add: async (deltas: UsageDelta[]) => {
      if (left-- > 0) throw new Error('Redis away');
      written.push(structuredClone(deltas));
    },
  };
  return { repo: repo as unknown as UsageRepository, written };
}

t.test('a failed flush keeps the counts; close flushes the rest', async (t) => {
  const { repo, written } = repository(1);
  const meter = new UsageMeter(repo, pino({ level: 'silent' }), 60_000);
  const hourMs = 3_600_000 * 490_000;
  meter.count('t1', 'i1', 'messagesPublished', 3, hourMs + 10);
  meter.count('t1', 'i1', 'storageBytes', 100, hourMs + 20);
  await meter.flush();
  t.same(written, [], 'the first flush failed');
  meter.count('t1', 'i1', 'messagesPublished', 2, hourMs + 30);
  meter.count('t1', 'i1', 'storageBytes', 150, hourMs + 40);
  meter.count('t1', 'i2', 'requests', 1, hourMs + 3_600_000);
  await meter.close();
  t.same(written, [
    [
      {
        tenantId: 't1',
        instanceId: 'i1',
        hour: 490_000,
        counters: { messagesPublished: 5, storageBytes: 150 },
      },
      { tenantId: 't1', instanceId: 'i2', hour: 490_001, counters: { requests: 1 } },
    ],
  ]);
});

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
