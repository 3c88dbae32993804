import t from 'tap';
import { QueueCursor, type Delivery } from '../../src/broker/queue-cursor.js';

const delivery = (queueOffset: number, attempt = 1, redeliverAtMs = 1000): Delivery => ({
  queueOffset,
  attempt,
  firstDeliveryMs: 0,
  nextVisibleMs: redeliverAtMs,
  redeliverAtMs,
});

t.test(
  'acks in any order move the committed offset only over contiguous done offsets',
  async (t) => {
    const cursor = new QueueCursor(10);
    cursor.deliver([delivery(10), delivery(11), delivery(12)], 13);
    t.equal(cursor.pullOffset, 13);
    t.equal(cursor.inflightCount, 3);
    cursor.complete([12]);
    t.equal(cursor.ackOffset, 10, 'a gap at 10 holds the committed offset');
    cursor.complete([10]);
    t.equal(cursor.ackOffset, 11);
    cursor.complete([11]);
    t.equal(cursor.ackOffset, 13);
    t.equal(cursor.inflightCount, 0);
    t.ok(cursor.isDone(12));
    t.notOk(cursor.isDone(13));
  },
);

t.test('offsets passed over by the filter are done at once', async (t) => {
  const cursor = new QueueCursor(0);
  cursor.deliver([delivery(2), delivery(5)], 8);
  t.ok(cursor.isDone(0));
  t.ok(cursor.isDone(3));
  t.ok(cursor.isDone(7));
  t.notOk(cursor.isDone(2));
  t.equal(cursor.ackOffset, 2);
  cursor.complete([2]);
  t.equal(cursor.ackOffset, 5);
  cursor.complete([5]);
  t.equal(cursor.ackOffset, 8);
});

t.test(
  'due deliveries come back oldest first; a redelivery makes older handles stale',
  async (t) => {
    const cursor = new QueueCursor(0);
    cursor.deliver([delivery(0, 1, 300), delivery(1, 1, 100), delivery(2, 1, 200)], 3);
    t.equal(cursor.earliestDueMs(), 100);
    t.same(cursor.takeDue(150, 10), [1]);
    t.same(cursor.takeDue(250, 10), [2]);
    cursor.deliver([delivery(1, 2, 900)], 3);
    t.notOk(cursor.isCurrent(1, 1), 'attempt 1 is stale');
    t.ok(cursor.isCurrent(1, 2));
    t.same(cursor.takeDue(400, 10), [0]);
    t.same(cursor.takeDue(400, 10), [], 'taken entries are not offered twice');
    t.equal(cursor.earliestDueMs(), 900);
  },
);

t.test('visibility changes move the due time and leave no duplicate', async (t) => {
  const cursor = new QueueCursor(0);
  cursor.deliver([delivery(0, 1, 1000)], 1);
  cursor.changeVisibility(0, 50, 50);
  cursor.changeVisibility(0, 50, 50);
  t.equal(cursor.earliestDueMs(), 50);
  t.same(cursor.takeDue(60, 10), [0]);
  cursor.changeVisibility(7, 1, 1);
  t.equal(cursor.earliestDueMs(), Infinity, 'unknown offsets are ignored');
});

t.test(
  'one old delivery in flight does not make the cursor keep what every later ack left behind',
  async (t) => {
    const cursor = new QueueCursor(0);
    // offset 0 stays in flight for 12 h; 100,000 later deliveries are acked, 64 at a time
    cursor.deliver([delivery(0, 1, 43_200_000)], 1);
    for (let from = 1; from < 100_001; from += 64) {
      const batch = Array.from({ length: 64 }, (_, i) => delivery(from + i, 1, 43_200_000 + i));
      cursor.deliver(batch, from + 64);
      cursor.changeVisibility(from, 43_200_000, 43_200_000); // a re-timed one as well
      cursor.complete(batch.map((d) => d.queueOffset));
    }
    t.equal(cursor.inflightCount, 1);
    const heapEntries = (cursor as unknown as { due: { size: number } }).due.size;
    t.ok(heapEntries <= 2 * 64 + 64 + 64, `due entries stay bounded (${heapEntries})`);
    t.equal(cursor.earliestDueMs(), 43_200_000, 'the old delivery still comes due');
    t.same(cursor.takeDue(43_200_001, 10), [0]);
  },
);

t.test('snapshot and restore give the same cursor', async (t) => {
  const cursor = new QueueCursor(4);
  cursor.deliver([delivery(4), delivery(6, 2, 77)], 9);
  cursor.complete([6]);
  const restored = QueueCursor.fromSnapshot(JSON.parse(JSON.stringify(cursor.snapshot())));
  t.same(restored.snapshot(), cursor.snapshot());
  t.equal(restored.earliestDueMs(), 1000);
});

t.test('reset, retention skip and clamp after a lost tail', async (t) => {
  const cursor = new QueueCursor(0);
  cursor.deliver([delivery(0), delivery(3)], 6);
  cursor.skipExpired(2);
  t.equal(cursor.ackOffset, 3);
  t.equal(cursor.inflightCount, 1);
  cursor.clampTo(4);
  t.equal(cursor.pullOffset, 4);
  t.notOk(cursor.isDone(4));
  cursor.clampTo(10);
  t.equal(cursor.pullOffset, 4, 'clamping above is a no-op');
  cursor.skipExpired(1);
  t.equal(cursor.ackOffset, 3, 'skipping below is a no-op');
  cursor.clampTo(2);
  t.equal(cursor.ackOffset, 2);
  t.equal(cursor.inflightCount, 0);
  cursor.reset(50);
  t.equal(cursor.ackOffset, 50);
  t.equal(cursor.pullOffset, 50);
  t.equal(cursor.earliestDueMs(), Infinity);
  cursor.complete([3, 60]);
  t.equal(cursor.ackOffset, 50, 'completing outside the window is ignored');
});

t.test(
  'FIFO order stops at the first in-flight offset that is not due; held offsets never come due',
  async (t) => {
    const cursor = new QueueCursor(0);
    cursor.deliver([delivery(0, 1, 100), delivery(1, 1, 500), delivery(2, 1, 100)], 3);
    t.same(cursor.dueInOrder(200, 10), [0]);
    t.same(cursor.dueInOrder(600, 10), [0, 1, 2]);
    t.same(cursor.dueInOrder(600, 2), [0, 1]);
    cursor.hold(0);
    t.ok(cursor.isHeld(0));
    t.same(cursor.dueInOrder(600, 10), []);
    t.same(cursor.takeDue(10_000, 10), [2, 1], 'the held offset is not taken; oldest due first');
    cursor.complete([1]);
    t.equal(cursor.doneAboveAck, 1);
  },
);

t.test(
  'a completion past the read position (its delivery entry never journaled) is done, and what it passed over is due once admitted',
  async (t) => {
    const cursor = new QueueCursor(0);
    cursor.deliver([delivery(0)], 1);
    cursor.complete([0, 3, 5]);
    t.equal(cursor.pullOffset, 6, 'read past the completed offsets');
    t.equal(cursor.ackOffset, 1);
    t.ok(cursor.isDone(3) && cursor.isDone(5), 'the completed offsets are done');
    t.equal(cursor.owedCount, 3, 'the offsets between are owed');
    t.equal(cursor.admitOwed(10), 3);
    t.same(cursor.takeDue(0, 10).sort(), [1, 2, 4], 'the offsets between are due now');
    t.equal(cursor.inflight.get(1)?.attempt, 0, 'at attempt 0: their next delivery is the first');
  },
);

t.test(
  'a gap of 5 million offsets left by lost delivery entries is owed as ranges, not put in flight one by one',
  async (t) => {
    const gap = 5_000_000;
    const cursor = new QueueCursor(0);
    cursor.deliver([delivery(0)], 1);
    // replay: the next entry on disk read from past the gap (the entries between were refused)
    cursor.deliver([delivery(gap + 1), delivery(gap + 2)], gap + 3, gap + 1);
    // and an ack whose delivery entry was lost too, further on
    cursor.complete([gap + 10]);
    t.equal(
      cursor.inflightCount,
      3,
      'in flight: only what the journal delivered (0, gap+1, gap+2)',
    );
    t.equal(cursor.owedCount, gap + 7, 'every offset passed over is owed: none done, none lost');
    t.notOk(cursor.isDone(1) || cursor.isDone(gap) || cursor.isDone(gap + 5));
    t.ok(cursor.isDone(gap + 10));
    t.equal(cursor.pullOffset, gap + 11);
    const restored = QueueCursor.fromSnapshot(JSON.parse(JSON.stringify(cursor.snapshot())));
    t.same(restored.snapshot(), cursor.snapshot(), 'a snapshot carries the owed ranges');
    t.ok(JSON.stringify(cursor.snapshot()).length < 1000, 'and stays small');

    t.equal(cursor.admitOwed(32), 32, 'admitted a batch at a time');
    t.equal(cursor.inflightCount, 35);
    t.same(
      cursor.takeDue(0, 100).sort((a, b) => a - b),
      Array.from({ length: 32 }, (_, i) => i + 1),
      'lowest first, due now',
    );
    t.equal(cursor.inflight.get(1)?.attempt, 0, 'at attempt 0: their next delivery is the first');
    // redelivered and acked, then the rest owed right up to the ack past the gap
    cursor.deliver(
      Array.from({ length: 32 }, (_, i) => delivery(i + 1)),
      cursor.pullOffset,
    );
    cursor.complete([0, ...Array.from({ length: 32 }, (_, i) => i + 1)]);
    t.equal(cursor.ackOffset, 33, 'the committed offset stops at the first owed offset');
    // an entry naming an owed offset (a redelivery or an ack of a delivery made before the
    // crash) takes it out of the owed ranges
    cursor.deliver([delivery(100, 2)], cursor.pullOffset);
    cursor.complete([200]);
    cursor.changeVisibility(300, 5, 5);
    t.equal(cursor.owedCount, gap + 7 - 32 - 3);
    t.equal(cursor.inflight.get(100)?.attempt, 2);
    t.ok(cursor.isDone(200));
    t.equal(cursor.inflight.get(300)?.redeliverAtMs, 5, 'an owed offset re-timed is in flight');
  },
);

t.test('owed offsets drain completely, and only owed offsets, through admit and ack', async (t) => {
  const cursor = new QueueCursor(0);
  cursor.deliver([delivery(0)], 1);
  cursor.deliver([delivery(100_001)], 100_002, 100_001);
  const seen = new Set<number>();
  while (cursor.owedCount > 0) {
    cursor.admitOwed(1000);
    const due = cursor.takeDue(0, 1000);
    for (const offset of due) seen.add(offset);
    cursor.complete(due);
  }
  t.equal(seen.size, 100_000);
  t.ok(
    [...seen].every((offset) => offset >= 1 && offset <= 100_000),
    'exactly the gap',
  );
  cursor.complete([0, 100_001]);
  t.equal(cursor.ackOffset, 100_002);
  t.equal(cursor.inflightCount, 0);
});

t.test(
  'owed offsets: retention, a clamp and a reset drop them; FIFO order waits for them',
  async (t) => {
    const cursor = new QueueCursor(0);
    cursor.deliver([delivery(0)], 1);
    cursor.deliver([delivery(50, 1, 0)], 51, 50);
    t.same(cursor.dueInOrder(10, 10), [], 'FIFO: offset 50 is not handed out ahead of 1..49');
    t.equal(cursor.earliestDueMs(true), 1000);
    cursor.complete([0]);
    t.equal(cursor.earliestDueMs(true), Infinity, 'FIFO: nothing due ahead of the owed offsets');
    cursor.skipExpired(10);
    t.equal(cursor.owedCount, 40);
    cursor.clampTo(30);
    t.equal(cursor.owedCount, 20);
    t.equal(cursor.admitOwed(5), 5);
    t.same(cursor.dueInOrder(10, 10), [10, 11, 12, 13, 14]);
    cursor.reset(0);
    t.equal(cursor.owedCount, 0);
    t.equal(cursor.inflightCount, 0);
  },
);

t.test('retention up to the end of an owed range leaves the next range to admit', async (t) => {
  const cursor = QueueCursor.fromSnapshot({
    ackOffset: 0,
    pullOffset: 10,
    inflight: [],
    done: [[5, 8]],
    owed: [
      [0, 5],
      [8, 10],
    ],
  });
  cursor.skipExpired(5); // offsets 0..4 deleted by retention
  t.equal(cursor.owedCount, 2);
  t.equal(cursor.admitOwed(3), 2, 'offsets 8 and 9 admitted (this call used to never return)');
  t.same(cursor.dueInOrder(Date.now(), 10), [8, 9], 'and due, in order');
});
