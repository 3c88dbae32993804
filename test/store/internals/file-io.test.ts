import t from 'tap';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INLINE_WRITE_MAX_BYTES, pwritev } from '../../../src/store/file-io.js';

function pattern(length: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 31 + seed) & 0xff;
  return buf;
}

t.test('pwritev writes every buffer in order at its position, inline or on the pool', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-fio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases = [
    { name: 'one small buffer (inline)', sizes: [1024] },
    { name: 'many small buffers (inline)', sizes: [100, 0, 3000, 7, 512] },
    { name: 'exactly the inline bound', sizes: [INLINE_WRITE_MAX_BYTES - 10, 10] },
    { name: 'one byte over the bound (pool)', sizes: [INLINE_WRITE_MAX_BYTES, 1] },
    { name: 'a large round (pool)', sizes: Array.from({ length: 300 }, () => 1100) },
    {
      name: 'more buffers than one writev takes (pool)',
      sizes: Array.from({ length: 1500 }, () => 3),
    },
    { name: 'nothing', sizes: [0] },
  ];
  for (const [index, c] of cases.entries()) {
    const path = join(dir, `f${index}`);
    const fd = openSync(path, 'w+');
    const buffers = c.sizes.map((size, i) => pattern(size, i + index));
    const head = pattern(17, 99);
    await pwritev(fd, [head], 0);
    await pwritev(fd, buffers, head.length);
    closeSync(fd);
    t.same(readFileSync(path), Buffer.concat([head, ...buffers]), c.name);
  }
});

t.test('a failed write rejects, inline or on the pool, and never throws at the call', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-fio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(join(dir, 'ro'), 'w+');
  closeSync(fd);
  const readOnly = openSync(join(dir, 'ro'), 'r');
  t.teardown(() => closeSync(readOnly));
  for (const size of [10, INLINE_WRITE_MAX_BYTES + 1]) {
    let answer: Promise<void> | undefined;
    t.doesNotThrow(() => (answer = pwritev(readOnly, [Buffer.alloc(size)], 0)), `${size} B`);
    await t.rejects(answer!, { code: 'EBADF' }, `${size} B rejects with the write's error`);
  }
});
