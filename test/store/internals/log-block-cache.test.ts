import t from 'tap';
import { LogBlockCache } from '../../../src/store/log-block-cache.js';

/** A log of `size` bytes whose byte at logOffset x is x & 0xff; counts and can fail reads. */
function fakeLog(size: number) {
  const state = { reads: 0, fail: false, gate: null as Promise<void> | null };
  const read = async (buf: Buffer, at: number, length: number, logOffset: number) => {
    state.reads++;
    if (state.gate !== null) await state.gate;
    if (state.fail) throw new Error('EIO');
    const n = Math.max(0, Math.min(length, size - logOffset));
    for (let i = 0; i < n; i++) buf[at + i] = (logOffset + i) & 0xff;
    return n;
  };
  return { state, read };
}

function holds(buf: Buffer, start: number, from: number, to: number): boolean {
  for (let x = from; x < to; x++) if (buf[x - start] !== (x & 0xff)) return false;
  return true;
}

t.test('a block is read once, grows as the log does, and is shared by readers', async (t) => {
  const log = fakeLog(10_000);
  const cache = new LogBlockCache(64 * 1024, log.read);
  let block = await cache.ensure(4096, 4096, 5000, 6000);
  t.equal(block.length, 6000 - 4096, 'read up to the readable end');
  t.ok(holds(block.buf, 4096, 4096, 6000));
  t.equal(log.state.reads, 1);
  block = await cache.ensure(4096, 4096, 5500, 6000);
  t.equal(log.state.reads, 1, 'served from memory');
  t.equal(cache.hits, 1);
  block = await cache.ensure(4096, 4096, 7000, 9000);
  t.equal(block.length, 4096, 'extended to the block end');
  t.ok(holds(block.buf, 4096, 4096, 8192));
  t.equal(log.state.reads, 2, 'only the missing part was read');
  let open!: () => void;
  log.state.gate = new Promise((resolve) => (open = resolve));
  const a = cache.ensure(0, 4096, 100, 9000);
  const b = cache.ensure(0, 4096, 4000, 9000);
  open();
  const [x, y] = await Promise.all([a, b]);
  t.equal(x, y);
  t.equal(log.state.reads, 3, 'one load for both');
  log.state.gate = null;
  const short = await cache.ensure(8192, 4096, 12288, 20_000);
  t.equal(short.length, 10_000 - 8192, 'a short read ends at the end of the file');
});

t.test('a failed load rejects its readers; the next one tries again', async (t) => {
  const log = fakeLog(10_000);
  const cache = new LogBlockCache(64 * 1024, log.read);
  log.state.fail = true;
  let open!: () => void;
  log.state.gate = new Promise((resolve) => (open = resolve));
  const first = cache.ensure(0, 4096, 4096, 9000);
  const second = cache.ensure(0, 4096, 4096, 9000);
  open();
  await t.rejects(first, /EIO/);
  await t.rejects(second, /EIO/);
  log.state.gate = null;
  cache.prefetch(4096, 4096, 9000);
  await new Promise((resolve) => setImmediate(resolve));
  log.state.fail = false;
  const block = await cache.ensure(0, 4096, 4096, 9000);
  t.ok(holds(block.buf, 0, 0, 4096));
  t.equal(cache.prefetches, 1, 'a failed prefetch is silent');
});

t.test('blocks stay within the byte limit; retention and close drop them', async (t) => {
  const log = fakeLog(1 << 20);
  const cache = new LogBlockCache(3 * 4096, log.read);
  for (let start = 0; start < 10 * 4096; start += 4096) {
    await cache.ensure(start, 4096, start + 4096, 1 << 20);
    t.ok(cache.cachedBytes <= 3 * 4096);
  }
  t.ok(cache.has(9 * 4096));
  t.notOk(cache.has(0), 'the least recently used went first');
  cache.prefetch(9 * 4096, 4096, 1 << 20);
  t.equal(cache.prefetches, 0, 'nothing to fetch for a cached block');
  cache.prefetch(20 * 4096, 4096, 20 * 4096);
  t.equal(cache.prefetches, 0, 'nothing past the readable end');
  cache.dropBelow(9 * 4096);
  t.equal(cache.cachedBytes, 4096);
  cache.clear();
  t.equal(cache.cachedBytes, 0);
});
