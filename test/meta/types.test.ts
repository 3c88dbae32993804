import t from 'tap';
import { allows, intersectPermissions, type Permission } from '../../src/meta/types.js';

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
