import t from 'tap';
import { TtlCache } from '../../src/meta/cache.js';
import { SecretBox } from '../../src/meta/secret-box.js';
import { allows, intersectPermissions, type Permission } from '../../src/meta/types.js';
import { newAccessKeyId, newInstanceId, newTenantId } from '../../src/meta/ids.js';
import { ACCESS_KEY_ID, INSTANCE_ID, TENANT_ID } from '../../src/meta/index.js';
import { scriptError } from '../../src/meta/scripts.js';
import { safeUrl } from '../../src/meta/meta-store.js';

t.test('ids match their formats', async (t) => {
  t.match(newTenantId(), TENANT_ID);
  t.match(newInstanceId(), INSTANCE_ID);
  t.match(newAccessKeyId(), ACCESS_KEY_ID);
  t.not(newTenantId(), newTenantId());
});

t.test('the secret box opens only with the same key and context', async (t) => {
  const box = new SecretBox('k'.repeat(32));
  const sealed = box.seal('s3cret', 'WK1');
  t.notMatch(sealed, 's3cret');
  t.equal(box.open(sealed, 'WK1'), 's3cret');
  t.throws(() => box.open(sealed, 'WK2'), { code: 'Internal' }, 'bound to its context');
  t.throws(() => new SecretBox('x'.repeat(32)).open(sealed, 'WK1'), { code: 'Internal' });
  t.throws(() => box.open('v2.a.b.c', 'WK1'), { code: 'Internal' });
  t.not(box.seal('s3cret', 'WK1'), sealed, 'a fresh IV each time');
});

t.test('token permissions are never broader than the key', async (t) => {
  const key: Permission[] = [
    { instance: 'I1', actions: ['manage', 'publish'] },
    { instance: '*', actions: ['query'] },
  ];
  t.same(intersectPermissions([{ instance: '*', actions: ['publish', 'query', 'consume'] }], key), [
    { instance: 'I1', actions: ['publish'] },
    { instance: '*', actions: ['query'] },
  ]);
  t.same(intersectPermissions([{ instance: 'I2', actions: ['publish', 'query'] }], key), [
    { instance: 'I2', actions: ['query'] },
  ]);
  t.same(intersectPermissions([{ instance: 'I3', actions: ['manage'] }], key), []);
  const merged = intersectPermissions(
    [
      { instance: 'I1', actions: ['publish'] },
      { instance: 'I1', actions: ['manage'] },
    ],
    key,
  );
  t.same(merged, [{ instance: 'I1', actions: ['manage', 'publish'] }]);
  t.ok(allows(key, 'I1', 'manage'));
  t.notOk(allows(key, 'I2', 'manage'));
  t.ok(allows(key, 'I2', 'query'));
});

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

t.test('script answers and URLs', async (t) => {
  t.match(scriptError(-3, 'topic x'), { code: 'QuotaExceeded' });
  t.match(scriptError(-99, 'x'), { code: 'Internal' });
  t.equal(safeUrl('redis://user:pw@h:1/0'), 'redis://user:***@h:1/0');
  t.equal(safeUrl('::'), 'the configured URL');
});
