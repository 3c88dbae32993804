// The opened-body cache: what was added is found by log offset, instance and envelope size and
// comes back as a copy; the oldest entries give way to new ones, across the ring's wrap; two
// records whose offsets share an index slot leave only the newer one found; a body whose bytes
// mimic an entry header is never taken for one; forget() empties it.
import t from 'tap';
import { cacheLayout, OpenedBodies } from '../../src/broker/opened-bodies.js';

const MiB = 1024 * 1024;

function body(seed: number, bytes = 1000): Buffer {
  return Buffer.alloc(bytes, seed & 0xff);
}

t.test(
  'finds what it was given, as a copy, and only under the same instance and size',
  async (t) => {
    const cache = new OpenedBodies(MiB);
    cache.add(4096, 'tenant/a', 1100, body(1));
    const found = cache.get(4096, 'tenant/a', 1100);
    t.same(found, body(1));
    found?.fill(9);
    t.same(cache.get(4096, 'tenant/a', 1100), body(1), 'a read copies the bytes out');
    t.equal(cache.get(4096, 'tenant/b', 1100), undefined, 'another instance');
    t.equal(cache.get(4096, 'tenant/a', 1101), undefined, 'another envelope size');
    t.equal(cache.get(4160, 'tenant/a', 1100), undefined, 'another offset');
    t.equal(cache.size, 1);
  },
);

t.test('the oldest entries give way, across many wraps of the ring', async (t) => {
  const cache = new OpenedBodies(MiB);
  const step = 1180; // a 1 KiB body's record and some of other records
  let offset = 5e9; // past 2^32: offsets are not small integers
  const offsets: number[] = [];
  for (let i = 0; i < 5000; i++) {
    cache.add(offset, 'tenant/a', 1100, body(i));
    offsets.push(offset);
    offset += step;
  }
  // 1 MiB (ring and index) holds about 900 entries of 1,024 bytes
  const found: number[] = [];
  const wrong: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const hit = cache.get(offsets[i], 'tenant/a', 1100);
    if (hit === undefined) continue;
    found.push(i);
    if (!hit.equals(body(i))) wrong.push(i);
  }
  t.same(wrong, [], 'every entry found is its own body');
  t.ok(found[0] > 3000, 'the first ones are gone');
  t.equal(found.length, 5000 - found[0], 'everything since the oldest found is found');
  t.equal(cache.size, found.length, 'size counts what can be found');
  t.ok(found.length > 850 && found.length <= 1000, `about a ring of entries (${found.length})`);
});

t.test('two offsets on one index slot: the newer is found, the older misses', async (t) => {
  const cache = new OpenedBodies(2 * 64 * 1024);
  const span = cache.indexSpan;
  t.ok(span >= 2 * 128 * 1024, 'the index spans two rings of log (the smallest ring: 128 KiB)');
  cache.add(1000 * 64, 'tenant/a', 1100, body(1));
  cache.add(1000 * 64 + span, 'tenant/a', 1100, body(2));
  t.equal(cache.get(1000 * 64, 'tenant/a', 1100), undefined);
  t.same(cache.get(1000 * 64 + span, 'tenant/a', 1100), body(2));
  t.equal(cache.size, 1);
});

t.test('a body that mimics an entry header is never taken for an entry', async (t) => {
  const cache = new OpenedBodies(2 * 64 * 1024); // a ring of 128 KiB
  // a filler at ring position 0, then entry A (1,000 bytes: 1,024 with its header) at 1,024
  const offsetA = 64 * 5;
  cache.add(64, 'tenant/a', 1100, body(1));
  cache.add(offsetA, 'tenant/a', 1100, body(2));
  t.same(cache.get(offsetA, 'tenant/a', 1100), body(2));
  // fill the ring until it wraps; the first entry after the wrap starts at 0 and its body, which
  // runs over where A's header was, carries a header for A's offset
  let offset = 1_000_000;
  while (offset < 1_000_000 + 126 * 1200) {
    cache.add(offset, 'tenant/a', 1100, body(3));
    offset += 1200;
  }
  const forged = Buffer.alloc(2000, 7);
  const at = 1024 - 24; // A's header position, in the forged body (which starts at ring 24)
  forged.writeDoubleLE(offsetA, at);
  forged.writeUInt32LE(1100, at + 8);
  forged.writeUInt32LE(1000, at + 12);
  forged.writeUInt32LE(0, at + 16); // tenant/a's instance number
  cache.add(offset, 'tenant/a', 2100, forged);
  t.same(cache.get(offset, 'tenant/a', 2100), forged, 'the forged body is an entry of its own');
  t.equal(cache.get(offsetA, 'tenant/a', 1100), undefined, 'A is gone, and nothing stands in');
});

t.test(
  'a budget splits into a ring of about 8/9 and an index, up to the largest setting',
  async (t) => {
    const MiB4096 = 4096 * MiB;
    for (const budget of [2048 * MiB, 2304 * MiB, 3000 * MiB, MiB4096, 64 * MiB, MiB]) {
      const { ringBytes, slots } = cacheLayout(budget);
      t.ok(
        ringBytes % 8 === 0 && ringBytes <= 2 ** 32,
        `${budget / MiB} MiB: a ring a Buffer can be`,
      );
      t.ok(
        Math.abs(ringBytes + 4 * slots - budget) <= 64,
        `${budget / MiB} MiB: ring ${ringBytes} and index ${4 * slots} make the budget`,
      );
    }
    t.same(cacheLayout(0), { ringBytes: 0, slots: 0 });
    t.equal(cacheLayout(1).ringBytes, 128 * 1024, 'the smallest ring');
  },
);

t.test('forget() empties it; a budget of 0 keeps nothing', async (t) => {
  const cache = new OpenedBodies(MiB);
  cache.add(128, 'tenant/a', 1100, body(1));
  cache.forget();
  t.equal(cache.get(128, 'tenant/a', 1100), undefined);
  t.equal(cache.size, 0);
  cache.add(128, 'tenant/a', 1100, body(2));
  t.same(cache.get(128, 'tenant/a', 1100), body(2), 'usable after forget()');
  const none = new OpenedBodies(0);
  none.add(128, 'tenant/a', 1100, body(1));
  t.equal(none.keeps, false);
  t.equal(none.get(128, 'tenant/a', 1100), undefined);
});
