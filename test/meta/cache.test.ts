import t from 'tap';
import { TtlCache } from '../../src/meta/cache.js';

t.test('the cache: single flight, expiry, epochs, prefixes, bound', async (t) => {
  const cache = new TtlCache({ ttlMs: 50, negativeTtlMs: 10, maxEntries: 3 });
  let loads = 0;
  const load = () => {
    loads++;
    return new Promise<number>((r) => setTimeout(() => r(loads), 5));
  };
  const [a, b] = await Promise.all([cache.get('x|1|', load), cache.get('x|1|', load)]);
  t.equal(a, b);
  t.equal(loads, 1, 'one load for concurrent misses');
  t.equal(await cache.get('x|1|', load), 1, 'served from cache');
  t.equal(await cache.get('x|1|', load, Date.now() + 100), 2, 'expired');

  const slow = cache.get('y|', load);
  cache.invalidate(['nothing|']);
  await slow;
  t.equal(
    await cache.get('y|', () => Promise.resolve(99)),
    99,
    'a load older than an invalidation is not kept',
  );

  await cache.get('x|10|', () => Promise.resolve(10));
  cache.invalidate(['x|1|']);
  t.equal(await cache.get('x|10|', () => Promise.resolve(11)), 10, 'prefix x|1| spares x|10|');

  for (const k of ['a|', 'b|', 'c|', 'd|']) await cache.get(k, () => Promise.resolve(k));
  t.ok(cache.size <= 3, 'bounded');
  await t.rejects(cache.get('err|', () => Promise.reject(new Error('boom'))));
  t.equal(await cache.get('err|', () => Promise.resolve('ok')), 'ok', 'failures are not cached');
  t.equal(await cache.get('null|', () => Promise.resolve(null)), null);
  cache.clear();
  t.equal(cache.size, 0);
});
