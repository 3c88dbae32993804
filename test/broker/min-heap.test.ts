import t from 'tap';
import { MinHeap } from '../../src/broker/min-heap.js';

t.test('pops values in key order', async (t) => {
  const heap = new MinHeap<string>();
  t.equal(heap.pop(), undefined);
  const keys = [5, 3, 9, 1, 7, 3, 0, 12, 4];
  for (const key of keys) heap.push(key, `v${key}`);
  t.equal(heap.size, keys.length);
  t.equal(heap.peekKey(), 0);
  const out: string[] = [];
  while (heap.size > 0) out.push(heap.pop() as string);
  t.same(
    out,
    [...keys].sort((a, b) => a - b).map((k) => `v${k}`),
  );
  heap.push(1, 'x');
  heap.clear();
  t.equal(heap.size, 0);
});
