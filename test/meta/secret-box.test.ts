import t from 'tap';
import { SecretBox } from '../../src/meta/secret-box.js';

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
