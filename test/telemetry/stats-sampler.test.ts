// The stats sampler against brokers that fail at once (a broker down: the routing client throws
// before any I/O): a pass goes on with the others and nothing is left unhandled — a rejection
// unhandled across the turn the pass gives to other work every 64 calls ended the process.
import t from 'tap';
import { pino } from 'pino';
import type { BrokerClient } from '../../src/cluster/index.js';
import type { MetaStore } from '../../src/meta/index.js';
import { StatsSampler } from '../../src/gateway/stats-sampler.js';
import type { UsageMeter } from '../../src/gateway/usage-meter.js';
import { GatewayMetrics } from '../../src/telemetry/index.js';

t.test('a pass over brokers that fail at once leaves no rejection unhandled', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const topics = Array.from({ length: 200 }, (_, i) => ({ topic: `t${i}`, queueCount: 1 }));
  const meta = {
    tenants: { list: () => Promise.resolve([{ tenantId: 'T1' }]) },
    instanceList: () => Promise.resolve([{ instanceId: 'I1' }]),
    topicList: () => Promise.resolve(topics),
    groupList: () => Promise.resolve([{ group: 'g' }]),
  } as unknown as MetaStore;
  let calls = 0;
  const brokers = {
    topicStats: () => {
      calls++;
      return Promise.reject(new Error('broker 2 is down'));
    },
  } as unknown as BrokerClient;
  const sampler = new StatsSampler({
    meta,
    brokers,
    metrics: new GatewayMetrics(),
    usage: { count: (...args: unknown[]) => void counted.push(args) } as unknown as UsageMeter,
    logger: pino({ level: 'silent' }),
  });
  const counted: unknown[][] = [];
  await sampler.sample();
  // a turn for any rejection still unhandled to be reported
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls, 200, 'every topic asked');
  t.same(unhandled, [], 'no rejection unhandled');
  t.same(counted, [], 'no storage sample (0) taken of topics whose brokers did not answer');
});

t.test('a pass drops the counter series of tenants deleted through another gateway', async (t) => {
  const metrics = new GatewayMetrics();
  metrics.messagesPublished.inc({ tenant: 'kept' }, 3);
  metrics.messagesPublished.inc({ tenant: 'gone' }, 5);
  metrics.messagesReceived.inc({ tenant: 'gone' }, 2);
  metrics.throttled.inc({ tenant: 'gone', quota: 'publish' });
  const meta = {
    // `gone` was deleted on another gateway, whose own series went with its DELETE
    tenants: { list: () => Promise.resolve([{ tenantId: 'kept' }]) },
    instanceList: () => Promise.resolve([]),
  } as unknown as MetaStore;
  const sampler = new StatsSampler({
    meta,
    brokers: {} as BrokerClient,
    metrics,
    usage: { count: () => undefined } as unknown as UsageMeter,
    logger: pino({ level: 'silent' }),
  });
  await sampler.sample();
  t.same([...(await metrics.tenantsCounted())], ['kept']);
  t.same(
    (await metrics.messagesPublished.get()).values.map((v) => [v.labels.tenant, v.value]),
    [['kept', 3]],
    'the live tenant keeps its count',
  );
});
