// The RabbitMQ and JetStream drivers against the servers on this machine's default ports, with
// tiny volumes; skipped where a server is not running (CI has none). The drivers are imported
// only when their server answers, so a skipped run does not count them as uncovered.
import t from 'tap';
import { connect as connectAmqp } from 'amqplib';
import { connect as connectNats } from 'nats';
import { measureDriver } from '../../../scripts/bench/lib/measure-driver.js';
import { probeTcp } from '../../../scripts/bench/lib/tcp-probe.js';

const plan = {
  messages: 200,
  bodyBytes: 1024,
  batch: 32,
  window: 64,
  ratePerSec: 1000,
  durationMs: 50,
};
const rabbitmq = await probeTcp('127.0.0.1', 5672);
const nats = await probeTcp('127.0.0.1', 4222);

const { createRabbitMqDriver } =
  rabbitmq === null
    ? await import('../../../scripts/bench/peers/rabbitmq.js')
    : { createRabbitMqDriver: null };
const { createJetStreamDriver } =
  nats === null
    ? await import('../../../scripts/bench/peers/jetstream.js')
    : { createJetStreamDriver: null };

for (const queueType of ['quorum', 'classic']) {
  t.test(
    `RabbitMQ ${queueType} queue: every phase, then the queue is gone`,
    { skip: rabbitmq ?? false },
    async (t) => {
      const driver = createRabbitMqDriver!({ queueType, prefetch: 50, ackEvery: 8 });
      const measurement = await measureDriver(driver, plan, null);
      t.match(measurement.name, /^RabbitMQ \d/);
      t.match(
        measurement.mode,
        new RegExp(`^${queueType} queue, confirms ≤256, prefetch 50, ack ×8`),
      );
      t.equal(measurement.publish?.messages, 200);
      t.equal(measurement.consume?.messages, 200);
      t.equal(measurement.latency?.count, 50);
      const connection = await connectAmqp('amqp://guest:guest@127.0.0.1:5672');
      t.teardown(() => connection.close());
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      await t.rejects(channel.checkQueue(driver.queue), /NOT_FOUND/);
    },
  );
}

for (const publisher of ['client', 'raw']) {
  t.test(
    `JetStream with the ${publisher} publisher: every phase, then the stream is gone`,
    { skip: nats ?? false },
    async (t) => {
      const driver = createJetStreamDriver!({ publisher, pullBatch: 64 });
      const measurement = await measureDriver(driver, plan, null);
      t.match(measurement.name, /^NATS JetStream \d/);
      t.match(
        measurement.mode,
        publisher === 'raw' ? /raw publisher ≤256, pull 64/ : /js\.publish ≤256, pull 64/,
      );
      t.equal(measurement.publish?.messages, 200);
      t.equal(measurement.consume?.messages, 200);
      t.equal(measurement.latency?.count, 50);
      const nc = await connectNats({ servers: '127.0.0.1:4222' });
      t.teardown(() => nc.close());
      const jsm = await nc.jetstreamManager();
      await t.rejects(jsm.streams.info(driver.stream), /stream not found/);
    },
  );
}

t.test('unknown RabbitMQ config is refused', { skip: rabbitmq ?? false }, async (t) => {
  t.throws(() => createRabbitMqDriver!({ queueType: 'stream' }), /quorum or classic/);
});

t.test('unknown JetStream config is refused', { skip: nats ?? false }, async (t) => {
  t.throws(() => createJetStreamDriver!({ publisher: 'fast' }), /client or raw/);
});
