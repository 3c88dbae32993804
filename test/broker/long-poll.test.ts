import t from 'tap';
import { LongPoll } from '../../src/broker/long-poll.js';

const limits = { maxParked: 10, maxParkedPerTenant: 10 };

/** Whether `promise` has settled once everything already queued has run. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

t.test('a notify between looking and parking wakes the receive at once', async (t) => {
  const poll = new LongPoll(limits);
  const since = poll.version('orders');
  poll.notify('orders');
  const abort = new AbortController();
  t.ok(await settled(poll.park('orders', 'tn', Date.now() + 60_000, since, abort.signal)));
  t.equal(poll.parkedCount, 0);
});

t.test('a receive parked without a notify since it looked waits for one', async (t) => {
  const poll = new LongPoll(limits);
  poll.notify('orders');
  const since = poll.version('orders');
  const parked = poll.park('orders', 'tn', Date.now() + 60_000, since);
  t.notOk(await settled(parked));
  t.equal(poll.parkedCount, 1);
  poll.notify('orders');
  t.ok(await settled(parked));
  t.equal(poll.parkedCount, 0);
});

t.test('forgetting versions past its bound never hides a notify from a receive', async (t) => {
  // the versions map is cleared when it holds many topics; a topic notified again afterwards
  // must not come back to the version a receive read before the clear
  const poll = new LongPoll(limits);
  poll.notify('orders');
  const since = poll.version('orders');
  for (let i = 0; i <= 100_001; i++) poll.notify(`topic-${i}`);
  poll.notify('orders'); // a message lands after the receive looked
  const abort = new AbortController();
  const parked = poll.park('orders', 'tn', Date.now() + 60_000, since, abort.signal);
  const woke = await settled(parked);
  abort.abort();
  t.ok(woke, 'the receive looks again instead of waiting out its poll');
});
