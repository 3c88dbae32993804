// Check-back offers that came after their call answered are kept for the next check of their
// topic on the gateway, until shortly before they would be offered again anyway.
import t from 'tap';
import { LateOffers, MAX_LATE_OFFERS } from '../../src/cluster/late-offers.js';
import type { CheckedMessage } from '../../src/model/index.js';

const offer = (id: string, nextCheckTime?: number): CheckedMessage => ({
  transactionId: id,
  messageId: id,
  publishTime: 0,
  checkCount: 1,
  body: Buffer.from(id),
  bodyEncoding: 'utf8',
  tag: '',
  keys: [],
  properties: {},
  shardingKey: null,
  ...(nextCheckTime === undefined ? {} : { nextCheckTime }),
});

t.test('kept per topic, handed out oldest first, at most max', async (t) => {
  const held = new LateOffers();
  const now = 1_000_000;
  held.put('a', [offer('1', now + 10_000), offer('2', now + 10_000), offer('3')], now);
  held.put('b', [offer('x', now + 10_000)], now);
  t.same(
    held.take('a', 2, now).map((o) => o.transactionId),
    ['1', '2'],
  );
  t.same(
    held.take('a', 5, now).map((o) => o.transactionId),
    ['3'],
    'one without a next check time is kept a while too',
  );
  t.same(held.take('a', 5, now), [], 'each handed out once');
  t.same(
    held.take('b', 5, now).map((o) => o.transactionId),
    ['x'],
  );
});

t.test('dropped shortly before they would be offered again, and bounded', async (t) => {
  const held = new LateOffers();
  const now = 1_000_000;
  held.put('a', [offer('soon', now + 400), offer('later', now + 10_000)], now);
  t.same(
    held.take('a', 5, now + 150).map((o) => o.transactionId),
    ['soon', 'later'],
    'one due again soon is kept for half the time left',
  );
  held.put('a', [offer('soon', now + 400), offer('later', now + 10_000)], now);
  t.same(
    held.take('a', 5, now + 9_000).map((o) => o.transactionId),
    ['later'],
    'then dropped: the broker offers it again',
  );
  held.put('a', [offer('late', now + 2_000)], now);
  t.same(held.take('a', 5, now + 1_600), [], 'expired before it was taken');
  const many = Array.from({ length: MAX_LATE_OFFERS + 10 }, (_, i) => offer(`${i}`, now + 60_000));
  held.put('c', many, now);
  const taken = held.take('c', MAX_LATE_OFFERS * 2, now);
  t.equal(taken.length, MAX_LATE_OFFERS, 'at most MAX_LATE_OFFERS');
  t.equal(taken[0].transactionId, '10', 'the oldest went first');
});
