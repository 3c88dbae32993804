import t from 'tap';
import { OffsetBitmap } from '../../src/broker/offset-bitmap.js';

/** A reference model: a plain Set with the same operations. */
function contiguousEnd(set: Set<number>, from: number): number {
  let offset = from;
  while (set.has(offset)) offset++;
  return offset;
}

t.test('behaves as a set of offsets under random adds, advances and drops', async (t) => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const bitmap = new OffsetBitmap();
  const model = new Set<number>();
  let checkpoint = 1_000_000; // far from 0: no bits below the first offset are kept
  let mismatches = 0;
  for (let round = 0; round < 300; round++) {
    const batch = Array.from({ length: 50 }, () => checkpoint + Math.floor(random() * 500));
    if (round % 7 === 0) batch.push(checkpoint - 40 - Math.floor(random() * 100)); // below
    bitmap.addAll(batch);
    for (const offset of batch) model.add(offset);
    const end = bitmap.contiguousEnd(checkpoint);
    if (end !== contiguousEnd(model, checkpoint)) mismatches++;
    checkpoint = end;
    bitmap.dropBelow(checkpoint);
    for (const offset of [...model]) if (offset < checkpoint) model.delete(offset);
    for (let probe = checkpoint - 64; probe < checkpoint + 600; probe++)
      if (bitmap.has(probe) !== model.has(probe)) mismatches++;
    if (bitmap.size !== model.size) mismatches++;
  }
  t.equal(mismatches, 0);
  t.ok(checkpoint > 1_000_000, 'the checkpoint moved');
});

t.test('contiguousEnd crosses whole words and stops at the first gap', async (t) => {
  const bitmap = new OffsetBitmap();
  for (let offset = 5; offset < 200; offset++) if (offset !== 150) bitmap.add(offset);
  t.equal(bitmap.contiguousEnd(5), 150);
  t.equal(bitmap.contiguousEnd(151), 200);
  t.equal(bitmap.contiguousEnd(4), 4, 'not in the set: itself');
  bitmap.dropBelow(150);
  t.notOk(bitmap.has(149));
  t.notOk(bitmap.has(150));
  t.ok(bitmap.has(151));
  bitmap.dropBelow(10_000);
  t.equal(bitmap.size, 0, 'dropping past everything empties it');
  bitmap.add(10_003);
  t.ok(bitmap.has(10_003));
  t.notOk(bitmap.has(10_002));
});
