import t from 'tap';
import { once } from 'node:events';
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

t.test(
  'a persistent server keeps its data across a stop and a SIGKILL (AOF everysec)',
  async (t) => {
    const dir = t.testdir();
    const servers: Awaited<ReturnType<typeof startRedisServer>>[] = [];
    t.teardown(async () => {
      for (const server of servers) await server.stop();
    });
    const start = async () => {
      const server = await startRedisServer({ dir, persist: true });
      servers.push(server);
      const redis = new Redis(server.url);
      t.teardown(() => redis.disconnect());
      return { server, redis };
    };

    const first = await start();
    t.same(await first.redis.config('GET', 'appendonly'), ['appendonly', 'yes']);
    t.same(await first.redis.config('GET', 'appendfsync'), ['appendfsync', 'everysec']);
    t.same(await first.redis.config('GET', 'dir'), ['dir', dir], 'files in the given dir');
    await first.redis.set('tenant', 'kept over a stop');
    first.redis.disconnect();
    await first.server.stop();

    const second = await start();
    t.equal(await second.redis.get('tenant'), 'kept over a stop');
    // The AOF is written before the reply: a killed server loses nothing answered.
    await second.redis.set('key', 'kept over a SIGKILL');
    const exited = once(second.server.process, 'exit');
    second.server.process.kill('SIGKILL');
    await exited;
    second.redis.disconnect();

    const third = await start();
    t.equal(await third.redis.get('tenant'), 'kept over a stop');
    t.equal(await third.redis.get('key'), 'kept over a SIGKILL');
  },
);
