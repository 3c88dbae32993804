// The ledger journal over a real store: recorded entries are applied at once and replayed after
// a reopen (from a snapshot plus the entries after it), byte counters ride in the snapshot,
// entries and snapshots written before versions still load, a bad entry stops start-up naming
// its position, and cursors are clamped to what the store holds.
import t, { type Test } from 'tap';
import { silentLogger } from '../../src/broker/broker-logger.js';
import { ConsumerLedger, subscriptionKey } from '../../src/broker/consumer-ledger.js';
import { Counters } from '../../src/broker/counters.js';
import { LedgerJournal } from '../../src/broker/ledger-journal.js';
import type { MessageStore } from '../../src/store/index.js';
import { openTestStore, storeDir } from '../helpers/store.js';

const sub = subscriptionKey('t1/i1/g', 't1/i1/orders', 0);

async function open(
  t: Test,
  dir: string,
  snapshotAfterBytes = 1 << 20,
): Promise<{
  store: MessageStore;
  ledger: ConsumerLedger;
  counters: Counters;
  journal: LedgerJournal;
}> {
  const store = await openTestStore(t, dir);
  const ledger = new ConsumerLedger();
  const counters = new Counters();
  const journal = new LedgerJournal(store, ledger, counters, silentLogger, snapshotAfterBytes);
  await journal.recover();
  return { store, ledger, counters, journal };
}

async function publish(store: MessageStore, count: number): Promise<void> {
  await store.append(
    Array.from({ length: count }, () => ({
      topic: 't1/i1/orders',
      queueId: 0,
      body: Buffer.from('x'),
      bornTimestampMs: Date.now(),
    })),
  );
}

t.test(
  'entries apply at once and replay after a reopen, with and without a snapshot',
  async (t) => {
    const dir = storeDir(t);
    const first = await open(t, dir);
    await publish(first.store, 5);
    await first.journal.record([]);
    await first.journal.record([{ op: 'start', sub, queue: 0, offset: 0 }]);
    await first.journal.record([
      {
        op: 'deliver',
        sub,
        queue: 0,
        d: [
          [0, 1, 1, 2, 3],
          [1, 1, 1, 2, 3],
        ],
        pull: 3,
        from: 0,
      },
    ]);
    t.equal(first.ledger.subscriptionsOf('t1/i1/orders')[0]?.inflightCount(), 2, 'applied at once');
    first.counters.topic('t1/i1/orders').bytesIn = 77;
    first.journal.snapshotSoon();
    await first.journal.settled();
    await first.journal.record([{ op: 'complete', sub, queue: 0, offsets: [0] }]);
    await first.journal.close();
    await first.store.close();

    const second = await open(t, dir);
    const cursor = second.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0);
    t.equal(cursor?.ackOffset, 1, 'the entry after the snapshot is replayed');
    t.same([...(cursor?.inflight.keys() ?? [])], [1]);
    t.equal(cursor?.pullOffset, 3);
    t.equal(second.counters.topic('t1/i1/orders').bytesIn, 77, 'byte counters are in the snapshot');
  },
);

t.test('a journal grown past the limit snapshots itself', async (t) => {
  const dir = storeDir(t);
  const { store, journal } = await open(t, dir, 1);
  await journal.record([{ op: 'start', sub, queue: 0, offset: 0 }]);
  await journal.settled();
  t.equal(store.journal.bytesSinceSnapshot(), 0, 'a snapshot took the journal');
  journal.snapshotIfChanged();
  await journal.settled();
  t.equal(store.journal.bytesSinceSnapshot(), 0);
});

t.test('entries and a snapshot written before versions still load', async (t) => {
  const dir = storeDir(t);
  const first = await open(t, dir);
  await publish(first.store, 3);
  await first.store.journal.writeSnapshot(
    Buffer.from(
      JSON.stringify({
        ledger: { v: 1, subs: [], slots: [['t1/i1/g', [['c', 1]]]], dlq: [] },
        bytesIn: [['t1/i1/orders', 5]],
      }),
    ),
  );
  await first.store.journal.append([
    Buffer.from(JSON.stringify({ op: 'start', sub, queue: 0, offset: 1 })),
  ]);
  await first.store.close();
  const second = await open(t, dir);
  t.equal(second.ledger.consumerIdOfSlot('t1/i1/g', 1), 'c');
  t.equal(second.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0)?.ackOffset, 1);
  t.equal(second.counters.topic('t1/i1/orders').bytesIn, 5);
});

t.test('a bad entry or a future snapshot stops recovery naming what was read', async (t) => {
  const dir = storeDir(t);
  const first = await open(t, dir);
  await first.journal.record([{ op: 'start', sub, queue: 0, offset: 0 }]);
  await first.store.journal.append([Buffer.from('{"v":1,"op":"start","sub":7}')]);
  await first.store.close();
  const store = await openTestStore(t, dir);
  const journal = new LedgerJournal(
    store,
    new ConsumerLedger(),
    new Counters(),
    silentLogger,
    1 << 20,
  );
  await t.rejects(journal.recover(), {
    code: 'CorruptIndex',
    message: /^journal entry 2 after the snapshot: sub is not a string/,
  });
  await store.close();

  const dir2 = storeDir(t);
  const other = await open(t, dir2);
  await other.store.journal.writeSnapshot(Buffer.from('{"v":3}'));
  await other.store.close();
  const store2 = await openTestStore(t, dir2);
  const journal2 = new LedgerJournal(store2, new ConsumerLedger(), new Counters(), silentLogger, 1);
  await t.rejects(journal2.recover(), {
    code: 'UnsupportedFormat',
    message: /consumer snapshot \(journal\/snapshot\): format version 3/,
  });
});

t.test('recovery clamps cursors to what the store holds', async (t) => {
  const dir = storeDir(t);
  const first = await open(t, dir);
  await publish(first.store, 2);
  // a cursor past the queue's end (its tail lost under the async policy)
  await first.journal.record([
    { op: 'start', sub, queue: 0, offset: 0 },
    { op: 'deliver', sub, queue: 0, d: [[4, 1, 1, 2, 3]], pull: 5, from: 0 },
  ]);
  await first.store.close();
  const second = await open(t, dir);
  const cursor = second.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0);
  t.equal(cursor?.pullOffset, 2, 'clamped to the queue end');
  t.notOk(cursor?.inflight.has(4), 'nothing in flight past the end');
  // stored where the lost tail was, then a crash (no final snapshot)
  await publish(second.store, 4);
  await second.store.close();
  const third = await open(t, dir);
  t.equal(
    third.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0)?.pullOffset,
    2,
    'the clamp holds at the next start: what was stored since is not skipped',
  );
});

t.test(
  'an entry recorded durably is applied once written; a snapshot asked for meanwhile waits for it',
  async (t) => {
    const dir = storeDir(t);
    const first = await open(t, dir);
    await publish(first.store, 5);
    await first.journal.record([
      { op: 'start', sub, queue: 0, offset: 0 },
      { op: 'deliver', sub, queue: 0, d: [[0, 1, 1, 2, 3]], pull: 5, from: 0 },
    ]);
    const cursor = () => first.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0);
    const reset = first.journal.recordDurably([{ op: 'reset', sub, queue: 0, offset: 2 }]);
    t.equal(cursor()?.ackOffset, 0, 'not applied before it is durable');
    first.journal.snapshotSoon(); // its position is past the reset: it must hold it
    await reset;
    t.equal(cursor()?.ackOffset, 2, 'applied once durable');
    await first.journal.settled();
    t.equal(first.store.journal.bytesSinceSnapshot(), 0, 'the snapshot was written after it');
    await first.store.close(); // a crash: no final snapshot

    const second = await open(t, dir);
    const replayed = second.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0);
    t.equal(replayed?.ackOffset, 2, 'the snapshot holds the reset');
    t.equal(replayed?.resets, 1);
  },
);

t.test(
  'closing while a durable entry is being written waits for it and snapshots it',
  async (t) => {
    const dir = storeDir(t);
    const first = await open(t, dir);
    await publish(first.store, 5);
    await first.journal.record([{ op: 'start', sub, queue: 0, offset: 0 }]);
    const reset = first.journal.recordDurably([{ op: 'reset', sub, queue: 0, offset: 2 }]);
    const closing = first.journal.close();
    await reset;
    await closing;
    t.equal(first.store.journal.bytesSinceSnapshot(), 0, 'the final snapshot holds the reset');
    await first.store.close();
    const second = await open(t, dir);
    t.equal(second.ledger.subscriptionsOf('t1/i1/orders')[0]?.cursors.get(0)?.ackOffset, 2);
  },
);

t.test(
  'a clamp left to a snapshot is not taken as saved by one serialized before it',
  async (t) => {
    const dir = storeDir(t);
    const first = await open(t, dir);
    const journal = first.store.journal as unknown as {
      writeSnapshot: (s: Buffer) => Promise<void>;
    };
    const write = journal.writeSnapshot.bind(journal);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let writes = 0;
    journal.writeSnapshot = (snapshot) => {
      writes++;
      return writes === 1 ? gate.then(() => write(snapshot)) : write(snapshot);
    };
    first.journal.snapshotSoon(); // serialized now, before the clamp
    first.journal.saveUnjournaledClamp(); // a clamp the journal refused, made after it
    release();
    await first.journal.settled();
    const before = writes;
    first.journal.snapshotIfChanged(); // the interval's round, nothing else written since
    await first.journal.settled();
    t.ok(writes > before, 'the next round writes a snapshot that holds the clamp');
  },
);
