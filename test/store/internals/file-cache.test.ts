import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileCache } from '../../../src/store/file-cache.js';
import { pread, pwritev } from '../../../src/store/file-io.js';
import { ReadCache } from '../../../src/store/read-cache.js';

t.test('the fd cache stays within its bound and never closes a descriptor in use', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-fc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cache = new FileCache(3);
  for (let i = 0; i < 10; i++) writeFileSync(join(dir, `f${i}`), `file-${i}`);
  const buf = Buffer.alloc(6);
  for (let i = 0; i < 10; i++) {
    await cache.with(join(dir, `f${i}`), (fd) => pread(fd, buf, 0, 6, 0));
    t.ok(cache.openCount <= 3);
  }
  // Hold 4 at once: the bound bends while all are in use, then comes back.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = [0, 1, 2, 3].map((i) => cache.with(join(dir, `f${i}`), () => gate));
  await new Promise((r) => setTimeout(r, 10));
  await cache.forget(join(dir, 'f0'));
  release();
  await Promise.all(held);
  await cache.with(join(dir, 'f9'), (fd) => pread(fd, buf, 0, 6, 0));
  t.ok(cache.openCount <= 3);
  await cache.closeAll();
  t.equal(cache.openCount, 0);
  await t.rejects(
    cache.with(join(dir, 'missing'), async () => 1, false),
    { code: 'ENOENT' },
  );
});

t.test('a file forgotten while it opens is not cached: its next user opens it anew', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-fc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cache = new FileCache(4);
  t.teardown(() => cache.closeAll());
  const path = join(dir, 'queue-file');
  writeFileSync(path, 'old');
  const read = (fd: number) => {
    const buf = Buffer.alloc(3);
    return pread(fd, buf, 0, 3, 0).then(() => buf.toString());
  };
  // a checkpoint's sync opens the file while the file's topic is deleted and created again
  const syncing = cache.with(path, read, false);
  await cache.forget(path);
  rmSync(path);
  writeFileSync(path, 'new');
  t.equal(await syncing, 'old', 'the open in flight reads the file it opened');
  t.equal(cache.openCount, 0, 'its descriptor is not kept');
  t.equal(await cache.with(path, read, false), 'new', 'the file created again is read itself');
});

t.test('pwritev writes more than IOV_MAX buffers in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-io-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cache = new FileCache(2);
  const path = join(dir, 'x');
  const buffers = Array.from({ length: 3000 }, (_, i) => Buffer.from([i & 0xff]));
  await cache.with(path, (fd) => pwritev(fd, buffers, 10));
  const out = Buffer.alloc(3010);
  const n = await cache.with(path, (fd) => pread(fd, out, 0, 3010, 0));
  t.equal(n, 3010);
  t.equal(out[10 + 2999], 2999 & 0xff);
  t.equal(out[10 + 1024], 1024 & 0xff);
  await cache.closeAll();
});

t.test('the read cache keeps the newest chunks within its byte limit', async (t) => {
  const cache = new ReadCache(1000);
  for (let i = 0; i < 3000; i++) cache.add(i * 100, Buffer.alloc(100, i & 0xff));
  t.ok(cache.cachedBytes <= 1000);
  t.equal(cache.find(0, 10), null);
  const hit = cache.find(2999 * 100 + 10, 20);
  t.equal(hit?.pos, 10);
  t.equal(cache.find(2999 * 100 + 90, 20), null, 'spans past the chunk');
  cache.add(400_000, Buffer.alloc(5000));
  t.equal(cache.find(400_000, 1), null, 'a chunk larger than the cache is not kept');
  cache.clear();
  t.equal(cache.cachedBytes, 0);
});
