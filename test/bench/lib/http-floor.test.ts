import t from 'tap';
import { createWharfHttpDriver } from '../../../scripts/bench/e2e/wharf-http.js';
import { startHttpFloor } from '../../../scripts/bench/lib/http-floor.js';
import { measureDriver } from '../../../scripts/bench/lib/measure-driver.js';

t.test('the http-floor server takes every call the Wharf HTTP driver makes', async (t) => {
  const floor = await startHttpFloor();
  t.teardown(() => floor.stop());
  const driver = createWharfHttpDriver({
    url: floor.url,
    accessKeyId: 'floor',
    accessKeySecret: 'floor',
    instanceId: 'floor',
    window: 64,
    consumers: 4,
    name: 'node:http floor',
    durable: 'no (memory)',
  });
  const measurement = await measureDriver(
    driver,
    {
      messages: 200,
      bodyBytes: 64,
      batch: 32,
      ratePerSec: 500,
      durationMs: 100,
      countSyncs: false,
    },
    floor.pid,
  );
  t.equal(measurement.name, 'node:http floor');
  t.equal(measurement.durable, 'no (memory)');
  t.equal(measurement.publish?.messages, 200, 'every publish answered');
  t.equal(measurement.consume?.messages, 200, 'the backlog drained, each message once');
  t.equal(measurement.latency?.count, measurement.latency?.sent, 'every paced message received');
  t.ok((measurement.latency?.sent ?? 0) > 0);
});
