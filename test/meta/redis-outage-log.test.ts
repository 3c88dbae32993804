// What the meta store says about a Redis outage: one warning per connection when it is lost
// and one line when it is back, not a line per reconnect attempt; and its commands fail as
// unreachable (503) at once meanwhile. The test's own redis-server is killed and restarted.
import t from 'tap';
import { once } from 'node:events';
import { MetaStore, isRedisUnavailable, startRedisServer } from '../../src/meta/index.js';
import { startTestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/eventually.js';

interface Line {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

t.test('an outage is logged once when lost and once when back', async (t) => {
  const redis = await startTestRedis(t);
  const lines: Line[] = [];
  const record = (level: Line['level']) => (obj: object, msg?: string) =>
    lines.push({ level, obj: obj as Record<string, unknown>, msg });
  const meta = await MetaStore.open({
    redisUrl: redis.url,
    masterKey: 'm'.repeat(32),
    logger: { info: record('info'), warn: record('warn'), error: record('error') },
  });
  t.teardown(() => meta.close());

  let reconnects = 0;
  meta.redis.on('reconnecting', () => reconnects++);
  const exited = once(redis.process, 'exit');
  redis.process.kill('SIGKILL');
  await exited;
  const failed = await meta.tenants.get('ten-aaaaaaaaaaaaaaaaaaaa').catch((err: unknown) => err);
  t.ok(isRedisUnavailable(failed), 'a command fails as unreachable while Redis is away');
  await eventually('both connections to report the loss', () => lines.length >= 2);
  // Several reconnect attempts fail while Redis is down (every 0.1–1 s).
  await eventually('three failed reconnects', () => reconnects >= 3);
  const lost = lines.filter((l) => l.level === 'warn');
  t.same(
    lost.map((l) => l.obj.connection).sort(),
    ['commands', 'invalidations'],
    'one warning each',
  );
  t.match(lost[0]?.msg, /Redis unreachable: requests that need it answer 503/);

  const again = await startRedisServer({ dir: t.testdir(), port: redis.port });
  t.teardown(() => again.stop());
  await eventually(
    'both connections to be back',
    () => lines.filter((l) => l.level === 'info').length >= 2,
  );
  const back = lines.filter((l) => l.level === 'info');
  t.same(back.map((l) => l.obj.connection).sort(), ['commands', 'invalidations']);
  t.ok(back.every((l) => typeof l.obj.downMs === 'number' && l.msg === 'Redis reachable again'));
  t.equal(lines.filter((l) => l.level === 'warn').length, 2, 'still one warning each');
  t.equal(await meta.tenants.get('ten-aaaaaaaaaaaaaaaaaaaa'), null, 'commands work again');
});
