// Transactions inside the broker: the txn-* journal ops (golden bytes, bad fields), the
// transaction ledger (first decision stands, snapshot round trip), and the crash windows between
// a commit's decision, its copy and its dispatched mark — each recovered to exactly one delivery.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { Broker } from '../../src/broker/index.js';
import { decodeBrokerSnapshot, encodeBrokerSnapshot } from '../../src/broker/broker-snapshot.js';
import {
  decodeLedgerEntry,
  encodeLedgerEntry,
  type JournalEntry,
} from '../../src/broker/ledger-entry-codec.js';
import type { LedgerJournal } from '../../src/broker/ledger-journal.js';
import { committedKey, halfTopic, storeTopic, SystemProperty } from '../../src/broker/names.js';
import { isTxnEntry, TransactionLedger } from '../../src/broker/transaction-ledger.js';
import type { TopicDescriptor } from '../../src/model/index.js';
import type { MessageStore } from '../../src/store/index.js';
import { brokerHarness, groupOf, text, topicOf } from '../helpers/broker.js';
import { waitFor } from '../helpers/wait-for.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/ledger-entry-txn-v1.json', import.meta.url), 'utf8'),
) as { entries: { value: JournalEntry; text: string }[] };

t.test('every txn op encodes to its frozen bytes and decodes back', async (t) => {
  t.equal(golden.entries.length, 5, 'one entry per txn op');
  for (const { value, text } of golden.entries) {
    t.equal(encodeLedgerEntry(value).toString(), text, `${value.op} bytes`);
    t.strictSame(decodeLedgerEntry(Buffer.from(text)), value, `${value.op} decodes`);
  }
});

t.test('bad txn entries are refused naming the field', async (t) => {
  const bad: [string, RegExp][] = [
    ['{"v":1,"op":"txn-commit","half":7,"queue":0,"offset":1}', /half/],
    ['{"v":1,"op":"txn-rollback","half":"h","queue":70000,"offset":1}', /queue/],
    ['{"v":1,"op":"txn-dispatched","half":"h","queue":0,"offsets":[-1]}', /offsets/],
    ['{"v":1,"op":"txn-check","half":"h","queue":0,"offsets":[1]}', /at/],
    ['{"v":1,"op":"txn-drop"}', /half/],
  ];
  for (const [entry, field] of bad)
    t.throws(() => decodeLedgerEntry(Buffer.from(entry)), { message: field }, entry);
});

t.test('the first decision stands and the snapshot carries the ledger', async (t) => {
  const ledger = new TransactionLedger();
  const half = 't/i/%HALF%/orders';
  const entries: JournalEntry[] = [
    { op: 'txn-check', half, queue: 0, offsets: [0, 1, 2], at: 10 },
    { op: 'txn-commit', half, queue: 0, offset: 0 },
    { op: 'txn-rollback', half, queue: 0, offset: 0 },
    { op: 'txn-rollback', half, queue: 0, offset: 1 },
    { op: 'txn-commit', half, queue: 0, offset: 1 },
    { op: 'txn-check', half, queue: 0, offsets: [1, 2], at: 20 },
    { op: 'txn-commit', half, queue: 0, offset: 3 },
    { op: 'txn-dispatched', half, queue: 0, offsets: [3] },
  ];
  for (const entry of entries) if (isTxnEntry(entry)) ledger.apply(entry);
  t.equal(ledger.decision(half, 0, 0), 'COMMITTED');
  t.equal(ledger.decision(half, 0, 1), 'ROLLED_BACK');
  t.equal(ledger.decision(half, 0, 2), 'UNDECIDED');
  t.same(ledger.checksOf(half, 0, 2), [2, 20], 'offers counted while undecided');
  t.same(ledger.checksOf(half, 0, 1), [0, 0], 'a decision forgets the offers');
  t.equal(ledger.undecidedFloor(half, 0, 0), 2);
  t.same(ledger.undispatched(), [{ half, queue: 0, offset: 0 }]);

  const snapshot = decodeBrokerSnapshot(
    encodeBrokerSnapshot({
      ledger: { v: 1, subs: [], slots: [], dlq: [] },
      bytesIn: [],
      transactions: ledger.snapshot(),
    }),
  );
  const restored = new TransactionLedger();
  restored.restore(snapshot.transactions!);
  t.same(restored.snapshot(), ledger.snapshot(), 'restored as it was');
  const legacy = decodeBrokerSnapshot(
    encodeBrokerSnapshot({ ledger: { v: 1, subs: [], slots: [], dlq: [] }, bytesIn: [] }),
  );
  t.equal(legacy.transactions, undefined, 'a snapshot from before transactions: none decided');
  restored.apply({ op: 'txn-drop', half });
  t.same(restored.snapshot().queues, [], 'a dropped half topic is forgotten');
});

function txnTopic(): TopicDescriptor {
  return topicOf({ messageType: 'TRANSACTION', queueCount: 1, createdAt: Date.now() - 1000 });
}

function journalOf(broker: Broker): LedgerJournal {
  return (broker as unknown as { core: { journal: LedgerJournal } }).core.journal;
}

async function receiveAll(broker: Broker, topic: TopicDescriptor, group = groupOf()) {
  return broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
}

t.test('a commit journaled but not dispatched is dispatched once at start', async (t) => {
  const harness = brokerHarness(t);
  const topic = txnTopic();
  const group = groupOf();
  const first = await harness.open();
  const [half] = await first.publish(topic, [text('decided, then crashed')]);
  t.same(await receiveAll(first, topic, group), []);
  // the decision is durable, the copy was never made (a crash between the two)
  await journalOf(first).record([
    { op: 'txn-commit', half: halfTopic(topic), queue: 0, offset: 0 },
  ]);
  await first.close();
  const second = await harness.open();
  const got = await receiveAll(second, topic, group);
  t.same(
    got.map((m) => [m.messageId, m.body.toString()]),
    [[half.messageId, 'decided, then crashed']],
  );
  await second.commitTransaction(topic, half.transactionId!);
  await second.close();
  const third = await harness.open();
  t.same(await receiveAll(third, topic, group), [], 'the group got it once');
  const page = await third.queryByTime(topic, { fromMs: 0, toMs: Date.now() + 1000, limit: 10 });
  t.equal(page.messages.length, 1, 'one copy in the topic');
});

t.test('a copy made but not marked dispatched is not made again at start', async (t) => {
  const harness = brokerHarness(t);
  const topic = txnTopic();
  const first = await harness.open();
  const [half] = await first.publish(topic, [text('copied, then crashed')]);
  const [stored] = await first.store
    .readQueue(halfTopic(topic), 0, 0, { maxMessages: 1 })
    .then((r) => r.messages);
  // decision and copy durable, the dispatched mark lost
  await journalOf(first).record([
    { op: 'txn-commit', half: halfTopic(topic), queue: 0, offset: 0 },
  ]);
  await first.store.append([
    {
      topic: storeTopic(topic),
      queueId: 0,
      keys: [committedKey(stored.logOffset)],
      properties: { ...stored.properties, [SystemProperty.messageId]: half.messageId },
      body: stored.body,
      bornTimestampMs: stored.bornTimestampMs,
    },
  ]);
  await first.close();
  const second = await harness.open();
  await second.commitTransaction(topic, half.transactionId!);
  const page = await second.queryByTime(topic, { fromMs: 0, toMs: Date.now() + 1000, limit: 10 });
  t.same(
    page.messages.map((m) => m.messageId),
    [half.messageId],
    'one copy, with the id the producer was given',
  );
});

t.test(
  "a check's byte budget: halves past it stay due and are not counted as offered",
  async (t) => {
    // halves come due 1 s after their publish (a check waits for that), an offered one 2 s later
    const broker = await brokerHarness(t).open({ transactions: { checkDelayMs: 1000 } });
    const topic = txnTopic();
    const bodies = ['a', 'b', 'c'].map((c) => c.repeat(1000));
    await broker.publish(
      topic,
      bodies.map((body) => text(body)),
    );
    // a stored (sealed) body is 1,029 bytes: two fit 2,500, a third does not
    const budget = { maxMessages: 32, waitMs: 0, maxBodyBytes: 2500 };
    const first = await broker.checkTransactions(topic, { ...budget, waitMs: 10_000 });
    t.equal(first.length, 2, 'two offers');
    const second = await broker.checkTransactions(topic, budget);
    t.equal(second.length, 1, 'the third is due still: offered to the next check at once');
    t.same([...first, ...second].map((m) => m.body.toString()).sort(), bodies);
    t.ok(
      [...first, ...second].every((m) => m.checkCount === 1),
      'each offered once: the one left over was not counted',
    );
    const one = await broker.checkTransactions(topic, { ...budget, maxBodyBytes: 1 });
    t.same(one, [], 'all three offered, waiting for their back-off');
    const big = txnTopic();
    await broker.publish(big, [text('x'.repeat(5000))]);
    const single = await broker.checkTransactions(big, {
      ...budget,
      maxBodyBytes: 1,
      waitMs: 10_000,
    });
    t.same(
      single.map((m) => m.body.length),
      [5000],
      'the first offer of an answer may pass the budget',
    );
  },
);

t.test('a check cancelled while parked makes no offer', async (t) => {
  const broker = await brokerHarness(t).open({ transactions: { checkDelayMs: 60_000 } });
  const topic = txnTopic();
  await broker.publish(topic, [text('pay')]);
  const controller = new AbortController();
  const parked = broker.checkTransactions(
    topic,
    { maxMessages: 16, waitMs: 30_000 },
    controller.signal,
  );
  await waitFor('the check parked', () => broker.longPoll.parkedCount === 1);
  // the half comes due just as the check is cancelled (another broker answered the gateway)
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + 120_000;
  t.teardown(() => {
    Date.now = realNow;
  });
  controller.abort();
  t.same(await parked, [], 'nothing offered to a cancelled check');
  const offered = await broker.checkTransactions(topic, { maxMessages: 16, waitMs: 0 });
  t.same(
    offered.map((m) => m.checkCount),
    [1],
    'the next check has it as its first offer: none was counted unseen',
  );
});

t.test(
  'a commit whose topic is dropped while it runs leaves no copy for the topic created again',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = txnTopic();
    const group = groupOf();
    const [half] = await broker.publish(topic, [text('of the deleted topic')]);
    // the commit's look for an earlier copy waits until the drop is done
    const { looked, dropped } = holdNextCopyLook(broker);
    const commit = broker.commitTransaction(topic, half.transactionId!);
    await looked;
    await broker.dropTopic(topic);
    dropped();
    await commit; // decided before the drop: the drop took its message with it
    const again = { ...topic, createdAt: topic.createdAt + 1 };
    const [fresh] = await broker.publish(again, [text('new half')]);
    await broker.commitTransaction(again, fresh.transactionId!);
    t.same(
      (await receiveAll(broker, again, group)).map((m) => m.body.toString()),
      ['new half'],
      "only the new topic's committed message",
    );
  },
);

t.test(
  'a decision waiting its turn while the topic is dropped is refused, and leaves nothing for the topic created again',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = txnTopic();
    const [half] = await broker.publish(topic, [text('of the deleted topic')]);
    // the first commit holds the transaction's turn (looking for an earlier copy) until the drop
    const { looked, dropped } = holdNextCopyLook(broker);
    const first = broker.commitTransaction(topic, half.transactionId!);
    await looked;
    // a client's retry of the commit waits behind it
    const retry = broker.commitTransaction(topic, half.transactionId!);
    await broker.dropTopic(topic);
    dropped();
    await first;
    await t.rejects(retry, { code: 'TopicNotFound' }, 'the retry finds the topic deleted');
    // the topic created again: its first half message stands at the same queue offset
    const again = { ...topic, createdAt: topic.createdAt + 1 };
    const [fresh] = await broker.publish(again, [text('new, to roll back')]);
    await broker.rollbackTransaction(again, fresh.transactionId!);
    t.same(await receiveAll(broker, again), [], 'rolled back: nothing delivered');
  },
);

/** Holds the broker's next look for a committed copy (a commit's, before it makes the copy):
 *  `looked` resolves once it is held, `dropped` lets it go on. */
function holdNextCopyLook(broker: Broker): { looked: Promise<void>; dropped: () => void } {
  const store = (broker as unknown as { store: MessageStore }).store;
  const queryByKey = store.queryByKey.bind(store);
  let dropped!: () => void;
  const dropDone = new Promise<void>((resolve) => (dropped = resolve));
  let looking: (() => void) | undefined;
  const looked = new Promise<void>((resolve) => (looking = resolve));
  const copyKey = committedKey(0).slice(0, -1); // a committed copy's key, without the offset
  store.queryByKey = async (...args: Parameters<MessageStore['queryByKey']>) => {
    if (looking !== undefined && args[1].startsWith(copyKey)) {
      looking();
      looking = undefined;
      await dropDone;
    }
    return queryByKey(...args);
  };
  return { looked, dropped };
}
