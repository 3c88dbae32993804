import t from 'tap';
import { Registry } from 'prom-client';
import { metricSuffix, registerBrokerMetrics } from '../../src/telemetry/broker-metrics.js';

t.test('broker stats are read at each scrape, named in snake_case', async (t) => {
  const registry = new Registry();
  let syncs = 1;
  registerBrokerMetrics(registry, 3, () => ({
    fdatasyncs: syncs,
    logEndOffset: 4096,
    broken: Number.NaN,
  }));
  t.match(await registry.metrics(), /wharf_broker_stat\{broker="3",stat="fdatasyncs"\} 1\n/);
  syncs = 7;
  const text = await registry.metrics();
  t.match(text, /stat="fdatasyncs"\} 7\n/);
  t.match(text, /stat="log_end_offset"\} 4096\n/);
  t.notMatch(text, /broken/, 'a figure that is not a number is left out');
  t.equal(metricSuffix('consumeQueueCacheHits'), 'consume_queue_cache_hits');
});
