import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { startTestRedis } from '../helpers/redis.js';
import { startRedisServer, strayServerPid } from '../../src/meta/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

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

t.test('a start waits while the server loads a large AOF (it answers -LOADING)', async (t) => {
  const dir = t.testdir();
  const first = await startRedisServer({ dir, persist: true });
  t.teardown(() => first.stop());
  const writer = new Redis(first.url);
  const value = 'v'.repeat(1024);
  for (let batch = 0; batch < 40; batch++) {
    const pipeline = writer.pipeline();
    for (let i = 0; i < 1000; i++) pipeline.set(`key:${batch}:${i}`, value);
    await pipeline.exec();
  }
  writer.disconnect();
  await first.stop();

  // 40 MB of AOF: the restarted server listens at once and answers -LOADING while it reads it
  const second = await startRedisServer({ dir, persist: true });
  t.teardown(() => second.stop());
  const reader = new Redis(second.url);
  t.teardown(() => reader.disconnect());
  t.equal(await reader.dbsize(), 40_000, 'every key back');
});

t.test(
  'a server a dead node left running in the dir is stopped before another starts',
  async (t) => {
    const dir = t.testdir();
    // the node that started it died without stopping it (SIGKILL): its handle is never used again
    const stray = await startRedisServer({ dir, persist: true });
    t.teardown(() => stray.stop());
    const writer = new Redis(stray.url);
    await writer.set('tenant', 'written through the stray server');
    writer.disconnect();
    t.equal(strayServerPid(dir), stray.process.pid, 'its pid file names it');

    const next = await startRedisServer({ dir, persist: true });
    t.teardown(() => next.stop());
    t.ok(
      stray.process.exitCode !== null || stray.process.signalCode !== null || (await exited(stray)),
      'the stray server is stopped: never two servers on one AOF',
    );
    t.equal(stray.process.exitCode, 0, 'it shut down (SIGTERM): its AOF flushed');
    t.equal(strayServerPid(dir), next.process.pid);
    const reader = new Redis(next.url);
    t.teardown(() => reader.disconnect());
    t.equal(await reader.get('tenant'), 'written through the stray server');
  },
);

t.test('a pid file naming another process is left alone', async (t) => {
  // a live process that is not a redis-server (a reused pid)
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
    stdio: 'ignore',
  });
  t.teardown(() => other.kill('SIGKILL'));
  const dir = t.testdir({ 'redis.pid': `${other.pid}\n` });
  t.equal(strayServerPid(dir), null, 'not a redis-server');
  const server = await startRedisServer({ dir, persist: true });
  t.teardown(() => server.stop());
  t.equal(strayServerPid(dir), server.process.pid);
  t.equal(other.exitCode ?? other.signalCode, null, 'the other process still runs');
});

/** Resolves true once `server`'s process has exited (waitFor's deadline bounds a broken run). */
function exited(server: Awaited<ReturnType<typeof startRedisServer>>): Promise<true> {
  return waitFor('the stray redis-server to exit', () =>
    server.process.exitCode !== null || server.process.signalCode !== null ? true : null,
  );
}
