import t from 'tap';
import { Redis } from 'ioredis';
import { startTestRedis } from '../helpers/redis.js';
import { startRedisServer } from '../../src/meta/redis-server.js';

t.test('starts a private redis-server on a free port that answers commands', async (t) => {
  const server = await startTestRedis(t);
  t.not(server.port, 6379);
  const redis = new Redis(server.url);
  t.teardown(() => redis.disconnect());
  await redis.set('k', 'v');
  t.equal(await redis.get('k'), 'v');
});

t.test('a missing binary is a clear Unavailable error', async (t) => {
  await t.rejects(startRedisServer({ dir: t.testdir(), binary: 'no-such-redis-server-binary' }), {
    code: 'Unavailable',
  });
});
