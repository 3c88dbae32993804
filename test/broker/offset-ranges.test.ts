import t from 'tap';
import { OffsetRanges } from '../../src/broker/offset-ranges.js';

t.test('adjacent and overlapping offsets merge into ranges', async (t) => {
  const set = new OffsetRanges();
  set.add(5);
  set.add(7);
  t.same(set.pairs(), [
    [5, 6],
    [7, 8],
  ]);
  set.add(6);
  t.same(set.pairs(), [[5, 8]]);
  set.addRange(10, 12);
  set.addRange(0, 2);
  t.same(set.pairs(), [
    [0, 2],
    [5, 8],
    [10, 12],
  ]);
  set.addRange(1, 11);
  t.same(set.pairs(), [[0, 12]]);
  set.addRange(3, 3);
  t.same(set.pairs(), [[0, 12]], 'empty range ignored');
  t.equal(set.size, 12);
});

t.test('membership, contiguous end and dropping below', async (t) => {
  const set = OffsetRanges.fromPairs([
    [10, 15],
    [20, 21],
  ]);
  t.ok(set.has(10));
  t.ok(set.has(14));
  t.notOk(set.has(15));
  t.notOk(set.has(9));
  t.ok(set.has(20));
  t.equal(set.contiguousEnd(10), 15);
  t.equal(set.contiguousEnd(12), 15);
  t.equal(set.contiguousEnd(16), 16);
  set.dropBelow(12);
  t.same(set.pairs(), [
    [12, 15],
    [20, 21],
  ]);
  set.dropBelow(16);
  t.same(set.pairs(), [[20, 21]]);
  t.equal(set.rangeCount, 1);
  for (const offset of [22, 23, 24, 30]) set.add(offset);
  set.dropFrom(23); // inside a range: its end comes down
  t.same(set.pairs(), [
    [20, 21],
    [22, 23],
  ]);
  set.add(30);
  set.dropFrom(25); // between ranges
  t.same(set.pairs(), [
    [20, 21],
    [22, 23],
  ]);
  set.dropFrom(20); // at a start: the range goes
  t.same(set.pairs(), []);
  set.clear();
  t.equal(set.size, 0);
});

t.test('random operations agree with a plain set', async (t) => {
  const set = new OffsetRanges();
  const model = new Set<number>();
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 2000; i++) {
    const start = random(300);
    const length = random(4);
    set.addRange(start, start + length);
    for (let o = start; o < start + length; o++) model.add(o);
  }
  for (let o = 0; o < 310; o++) t.equal(set.has(o), model.has(o), `offset ${o}`);
  t.equal(set.size, model.size);
});

t.test('removing offsets splits or trims the ranges they fall in', async (t) => {
  const set = OffsetRanges.fromPairs([
    [0, 10],
    [20, 30],
    [40, 50],
  ]);
  t.equal(set.first, 0);
  set.delete(5);
  t.same(set.pairs(), [
    [0, 5],
    [6, 10],
    [20, 30],
    [40, 50],
  ]);
  set.removeRange(8, 45);
  t.same(set.pairs(), [
    [0, 5],
    [6, 8],
    [45, 50],
  ]);
  set.removeRange(0, 5);
  set.delete(7);
  set.delete(100);
  t.same(set.pairs(), [
    [6, 7],
    [45, 50],
  ]);
  t.equal(set.first, 6);
  set.removeRange(0, 100);
  t.equal(set.first, undefined);
  t.equal(set.rangeCount, 0);
});

t.test('dropping below a range end leaves no empty range behind', async (t) => {
  const ranges = new OffsetRanges();
  ranges.addRange(0, 5);
  ranges.addRange(8, 10);
  ranges.dropBelow(5);
  t.same(ranges.pairs(), [[8, 10]]);
  t.equal(ranges.first, 8);
  t.equal(ranges.contiguousEnd(8), 10);
});
