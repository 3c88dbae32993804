import t from 'tap';
import { SendWindow } from '../../../scripts/bench/lib/send-window.js';

t.test('acquire is synchronous while there is room, then waits for a release', async (t) => {
  const window = new SendWindow(2);
  t.equal(window.acquire(), undefined);
  t.equal(window.acquire(), undefined);
  t.equal(window.outstanding, 2);
  const wait = window.acquire();
  t.ok(wait instanceof Promise, 'full: a promise');
  let acquired = false;
  void wait!.then(() => (acquired = true));
  await Promise.resolve();
  t.notOk(acquired);
  window.release();
  await wait;
  t.ok(acquired);
  t.equal(window.outstanding, 2);
});

t.test('waiters are served in order and a batch takes several slots', async (t) => {
  const window = new SendWindow(4);
  t.equal(window.acquire(3), undefined);
  const order: string[] = [];
  const batch = window.acquire(2)!.then(() => order.push('batch'));
  const single = window.acquire(1)!.then(() => order.push('single'));
  window.release(1);
  await batch;
  window.release(3);
  await single;
  t.same(order, ['batch', 'single'], 'a later small acquire does not overtake a waiting batch');
  t.equal(window.acquire(10) instanceof Promise, true, 'a batch over the size is capped to it');
});

t.test('idle resolves once everything is released', async (t) => {
  const window = new SendWindow(8);
  await window.idle();
  window.acquire(3);
  let idle = false;
  const waiting = window.idle().then(() => (idle = true));
  window.release(2);
  await Promise.resolve();
  t.notOk(idle);
  window.release(1);
  await waiting;
  t.ok(idle);
});

t.test('a failure rejects waiters, idle and later acquires', async (t) => {
  const window = new SendWindow(1);
  window.acquire();
  const waiting = window.acquire()!;
  const idle = window.idle();
  window.fail(new Error('nack'));
  window.fail(new Error('second failure is ignored'));
  await t.rejects(waiting, { message: 'nack' });
  await t.rejects(idle, { message: 'nack' });
  await t.rejects(window.acquire()!, { message: 'nack' });
  await t.rejects(window.idle(), { message: 'nack' });
});

t.test('a window size must be a positive integer', async (t) => {
  t.throws(() => new SendWindow(0), RangeError);
  t.throws(() => new SendWindow(1.5), RangeError);
});
