import t from 'tap';
import { Redis } from 'ioredis';
import { measureDriver } from '../../../scripts/bench/lib/measure-driver.js';
import {
  RedisStreamsDriver,
  createRedisStreamsDriver,
  parseReadGroupReply,
} from '../../../scripts/bench/peers/redis-streams.js';
import { startTestRedis } from '../../helpers/redis.js';

const plan = {
  messages: 300,
  bodyBytes: 1024,
  batch: 32,
  window: 64,
  ratePerSec: 1000,
  durationMs: 50,
};

t.test(
  'publishes, drains and paces through a private Redis, then deletes its stream',
  async (t) => {
    const server = await startTestRedis(t);
    const driver = createRedisStreamsDriver({ url: server.url, readCount: 100 });
    t.match(driver.mode, /XREADGROUP COUNT 100/);
    const measurement = await measureDriver(driver, plan, server.process.pid ?? null);
    t.match(measurement.name, /^Redis \d+\.\d+\.\d+ Streams$/);
    t.equal(measurement.durable, 'no (no persistence)');
    t.equal(measurement.publish?.messages, 300);
    t.equal(measurement.publish?.window, 64);
    t.equal(measurement.consume?.messages, 300);
    t.equal(measurement.latency?.sent, 50);
    t.equal(measurement.latency?.count, 50, 'every paced message received');
    const redis = new Redis(server.url);
    t.teardown(() => redis.disconnect());
    t.equal(await redis.exists(driver.key), 0, 'stream deleted');
  },
);

t.test('a missing Redis fails setup, and teardown after it is harmless', async (t) => {
  const driver = new RedisStreamsDriver({ url: 'redis://127.0.0.1:1' });
  await t.rejects(driver.setup());
  await driver.teardown();
  await t.rejects(
    driver.publishThroughput({ messages: 1, bodyBytes: 8, batch: 1 }),
    /before setup/,
  );
});

t.test('XREADGROUP replies are read as id and body', async (t) => {
  const id = Buffer.from('1-0');
  const body = Buffer.from('hello');
  t.same(parseReadGroupReply(null), []);
  t.same(parseReadGroupReply([[Buffer.from('k'), [[id, [Buffer.from('b'), body]]]]]), [
    { id, body },
  ]);
  t.throws(() => parseReadGroupReply('x'), /unexpected XREADGROUP reply/);
  t.throws(() => parseReadGroupReply([[Buffer.from('k'), 'x']]), /unexpected XREADGROUP reply/);
  t.throws(() => parseReadGroupReply([[Buffer.from('k'), ['x']]]), /unexpected XREADGROUP entry/);
  t.throws(
    () => parseReadGroupReply([[Buffer.from('k'), [[id, []]]]]),
    /unexpected XREADGROUP entry/,
  );
});

t.test('config is narrowed', async (t) => {
  t.throws(() => createRedisStreamsDriver({ window: 'big' }), /config.window must be a number/);
  t.throws(() => createRedisStreamsDriver({ url: 5 }), /config.url must be a string/);
});
