import t from 'tap';
import { scriptError } from '../../src/meta/scripts.js';

t.test('script answers map to error codes', async (t) => {
  t.match(scriptError(-3, 'topic x'), { code: 'QuotaExceeded' });
  t.match(scriptError(-99, 'x'), { code: 'Internal' });
});
