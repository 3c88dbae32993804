// eachLimited: every item's task runs, never more than `limit` at once; after a failure no new
// task starts, the running ones finish, and the first failure is thrown.
import t from 'tap';
import { eachLimited } from '../../../src/store/each-limited.js';

t.test('runs every task, at most `limit` at once', async (t) => {
  let running = 0;
  let most = 0;
  const done: number[] = [];
  await eachLimited([...Array(20).keys()], 3, async (i) => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setImmediate(resolve));
    done.push(i);
    running--;
  });
  t.same(
    [...done].sort((a, b) => a - b),
    [...Array(20).keys()],
  );
  t.equal(most, 3);
  await eachLimited([], 3, () => Promise.reject(new Error('never called')));
});

t.test('after a failure no new task starts; the first failure is thrown', async (t) => {
  const started: number[] = [];
  await t.rejects(
    eachLimited([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await new Promise((resolve) => setImmediate(resolve));
      if (i === 0) throw new Error('first');
      if (i === 1) throw new Error('second');
    }),
    { message: 'first' },
  );
  t.same(started, [0, 1], 'the running ones finished, no more started');
});
