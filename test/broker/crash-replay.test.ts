// What a consumer sees after a broker crash that found the consumer ledger's journal incomplete:
// a delivery entry the journal refused (a full disk), or a cursor clamped at the restart before
// (a log tail lost under the async flush policy). "Crash" = copy the data dir of a broker that
// is never closed and open a broker on the copy (crashCopy). Each test failed before its fix.
import t, { type Test } from 'tap';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Broker, type BrokerOptions } from '../../src/broker/index.js';
import { storeTopic } from '../../src/broker/names.js';
import { WharfError } from '../../src/errors.js';
import type { GroupDescriptor, TopicDescriptor } from '../../src/model/index.js';
import type { MessageStore } from '../../src/store/index.js';
import {
  brokerHarness,
  crashCopy,
  fifoOwedBelowInflight,
  fiveAcked,
  groupOf,
  holdsOp,
  journalAppends,
  journalWritten,
  lostTailCrash,
  MAC_KEY,
  redeliverAll,
  text,
  topicOf,
} from '../helpers/broker.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';
import { waitFor } from '../helpers/wait-for.js';
import { Redis } from 'ioredis';
import { MetaKeys, RedisPublishFenceSink, RedisPublishFences } from '../../src/meta/index.js';
import { startTestRedis } from '../helpers/redis.js';

const checkDisk = (store: MessageStore) =>
  (store as unknown as { checkDisk(): Promise<void> }).checkDisk();

/** A broker on a fresh 64 MiB tmpfs, with a `filler` path to fill it; null (the test skipped)
 *  where no tmpfs can be mounted. Free space is measured only when the test says so: the journal
 *  meets a real ENOSPC. */
async function brokerOnTmpfs(t: Test, overrides: Partial<BrokerOptions> = {}) {
  const mnt = mountTmpfs(t, 64);
  if (mnt === null) return null;
  const dataDir = join(mnt, 'broker');
  const options = {
    ...overrides,
    brokerId: 0,
    macKey: MAC_KEY,
    trace: false,
    store: {
      segmentBytes: 1024 * 1024,
      minFreeDiskBytes: 0,
      diskCheckIntervalMs: 3_600_000,
      checkpointIntervalMs: 3_600_000,
    },
  };
  const b1 = await Broker.open({ dataDir, ...options });
  t.teardown(() => b1.close());
  return { dataDir, filler: join(mnt, 'filler'), options, b1 };
}

t.test(
  'a message acked after its delivery entry met a full disk is not delivered again after a crash',
  async (t) => {
    const onTmpfs = await brokerOnTmpfs(t);
    if (onTmpfs === null) return;
    const { dataDir, filler, options, b1 } = onTmpfs;
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const count = 100;
    await b1.publish(
      topic,
      Array.from({ length: count }, (_, i) => text(`m${i}`)),
    );
    const receive = (broker: Broker, maxMessages: number) =>
      broker.receive(topic, group, { maxMessages, waitMs: 0, tags: '*' });
    const [first] = await receive(b1, 1);
    t.same(await b1.ack(topic, group, [first.receiptHandle]), [
      { receiptHandle: first.receiptHandle, ok: true },
    ]);

    fillDisk(filler);
    // its delivery entry (99 deliveries, several KiB) needs new pages: the journal write fails
    const rest = await receive(b1, count);
    t.equal(rest.length, count - 1, 'handed out: the answer does not wait for the journal');
    await waitFor('the journal write to fail', () =>
      /journal/.test(b1.store.health().detail ?? ''),
    );
    rmSync(filler);
    await checkDisk(b1.store);
    t.equal(b1.store.health().writable, true, 'writable again');

    const acked = rest.slice(0, -3);
    const results = await b1.ack(
      topic,
      group,
      acked.map((m) => m.receiptHandle),
    );
    t.ok(
      results.every((r) => r.ok),
      'every ack answered ok',
    );

    const b2 = await crashCopy(t, dataDir, options);
    const back = await receive(b2, count);
    t.same(
      back.map((m) => m.body.toString()).sort(),
      rest
        .slice(-3)
        .map((m) => m.body.toString())
        .sort(),
      'only the unacked messages come back',
    );
  },
);

t.test(
  'a transaction decision a full disk refused decides nothing, before and after a crash',
  async (t) => {
    const onTmpfs = await brokerOnTmpfs(t);
    if (onTmpfs === null) return;
    const { dataDir, filler, options, b1 } = onTmpfs;
    const topic = topicOf({ queueCount: 1, messageType: 'TRANSACTION' });
    const count = 200;
    const halves = await b1.publish(
      topic,
      Array.from({ length: count }, (_, i) => text(`h${i}`)),
    );
    const ids = halves.map((h) => h.transactionId!);
    const group = groupOf();
    const receive = (broker: Broker) =>
      broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.same(await receive(b1), [], 'nothing visible before a commit (the group starts here)');

    fillDisk(filler);
    // a few KiB of rollback entries need new pages: the journal refuses them
    const first = await Promise.allSettled(ids.map((id) => b1.rollbackTransaction(topic, id)));
    const refused = ids.filter((_, i) => first[i].status === 'rejected');
    t.ok(refused.length > 0, `the full disk refused rollbacks (${refused.length} of ${count})`);
    const [one, ...others] = refused;
    await t.rejects(b1.rollbackTransaction(topic, one), 'its repeat is refused too, not 204');
    const contrary = await b1.commitTransaction(topic, one).then(
      () => 'answered 204',
      (error: unknown) => (error instanceof WharfError ? error.code : String(error)),
    );
    t.not(contrary, 'Conflict', 'a commit is not refused as a conflict with it');
    t.not(contrary, 'answered 204', 'nor taken while the disk is full');

    rmSync(filler);
    await checkDisk(b1.store);
    t.equal(b1.store.health().writable, true, 'writable again');
    await b1.commitTransaction(topic, one);
    for (const id of others) await b1.rollbackTransaction(topic, id);

    const b2 = await crashCopy(t, dataDir, options);
    const got = await receive(b2);
    t.same(
      got.map((m) => m.messageId),
      [halves[ids.indexOf(one)].messageId],
      'only the committed message is delivered',
    );
    await t.resolves(b2.commitTransaction(topic, one), 'the commit stands after the crash');
    await t.rejects(b2.commitTransaction(topic, others[0] ?? ids[0]), { code: 'Conflict' });
  },
);

t.test(
  'an automatic rollback the full disk refused is made by a later sweep, not at the age limit',
  async (t) => {
    // offered once, a half is past its check limit when it comes due again (20 ms later)
    const onTmpfs = await brokerOnTmpfs(t, {
      transactions: { checkDelayMs: 10, maxChecks: 1, sweepIntervalMs: 50 },
    });
    if (onTmpfs === null) return;
    const { filler, b1 } = onTmpfs;
    const topic = topicOf({ queueCount: 1, messageType: 'TRANSACTION' });
    const halves = await b1.publish(
      topic,
      Array.from({ length: 200 }, (_, i) => text(`h${i}`)),
    );
    let offered = 0;
    await waitFor('every half offered once', async () => {
      offered += (await b1.checkTransactions(topic, { maxMessages: 32, waitMs: 0 })).length;
      return offered >= halves.length;
    });
    fillDisk(filler);
    // a check takes the halves past their limit to roll them back: the journal refuses it
    await waitFor('a check to meet the refused rollback', async () => {
      const result = await b1.checkTransactions(topic, { maxMessages: 32, waitMs: 0 }).then(
        () => false,
        () => true,
      );
      return result;
    });
    rmSync(filler);
    await checkDisk(b1.store);
    t.equal(b1.store.health().writable, true, 'writable again');
    await waitFor('the sweep to roll every half back', () => b1.undecidedTransactions() === 0);
    const results = await Promise.allSettled(
      halves.map((h) => b1.commitTransaction(topic, h.transactionId!)),
    );
    t.ok(
      results.every((r) => r.status === 'rejected' && (r.reason as WharfError).code === 'Conflict'),
      'every half rolled back: a commit conflicts',
    );
  },
);

/** A broker under the async flush policy (a crash can lose the log's unsynced tail), a topic of
 *  one queue and a group: the set-up of the lost-tail tests. */
async function asyncFlushBroker(t: Test, topicOverrides: Partial<TopicDescriptor> = {}) {
  const harness = brokerHarness(t);
  const options = { store: { flushPolicy: 'async' as const } };
  const b1 = await harness.open(options);
  const topic = topicOf({ queueCount: 1, ...topicOverrides });
  const group = groupOf();
  const receive = (broker: Broker) =>
    broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
  return { harness, options, b1, topic, group, receive };
}

t.test(
  'under async flush, two crashes within one snapshot interval do not skip what was published between them',
  async (t) => {
    const { harness, options, b1, topic, group, receive } = await asyncFlushBroker(t);
    await b1.publish(topic, [text('m0'), text('m1'), text('m2')]);
    const lostTail = lostTailCrash(t, harness.dir);
    await b1.publish(topic, [text('m3'), text('m4'), text('m5')]);
    const first = await receive(b1);
    t.equal(first.length, 6, 'all six delivered');
    const acks = await b1.ack(
      topic,
      group,
      first.map((m) => m.receiptHandle),
    );
    t.ok(
      acks.every((r) => r.ok),
      'all six acked',
    );
    // The first crash loses the commit log's unsynced tail (m3..m5) while the journal, synced on
    // its own timer, keeps the acks of all six: the commit log and what is derived from it as
    // they were when only m0..m2 were synced, the journal as it is now.
    const b2 = await lostTail.crash({ ...options });
    await b2.publish(topic, [text('n0'), text('n1'), text('n2')]);
    // the second crash, before any snapshot
    const b3 = await crashCopy(t, lostTail.dir, options);
    t.same(
      (await receive(b3)).map((m) => m.body.toString()),
      ['n0', 'n1', 'n2'],
      'the messages published after the first restart are delivered',
    );
  },
);

t.test(
  'under async flush, withdrawn offsets lost with the log tail withdraw nothing stored there next',
  async (t) => {
    const server = await startTestRedis(t);
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    t.teardown(() => redis.quit());
    const keys = new MetaKeys('test');
    const harness = brokerHarness(t);
    const options = { store: { flushPolicy: 'async' as const } };
    const b1 = await harness.open({
      ...options,
      brokerId: 3,
      publishFences: new RedisPublishFences(redis, keys, 3),
      fenceIntervalMs: 20,
    });
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const laterGroup = groupOf(); // first receives after the second crash
    await b1.publish(topic, [text('m0'), text('m1'), text('m2')]);
    const lostTail = lostTailCrash(t, harness.dir);
    // a gateway call stored at offsets 3..5 whose answer was lost: its fence withdraws them
    const sentAtMs = Date.now();
    await b1.publish(topic, [
      text('w3', { queueId: 0, requestId: 'gw.1' }),
      text('w4', { queueId: 0, requestId: 'gw.1' }),
      text('w5', { queueId: 0, requestId: 'gw.1' }),
    ]);
    await new RedisPublishFenceSink(redis, keys).add(3, {
      requestId: 'gw.1',
      topic,
      queueIds: [0],
      sentAtMs,
    });
    await waitFor('the fence applied', async () => (await redis.hlen(keys.publishFences(3))) === 0);
    // the crash loses the commit log's unsynced tail (w3..w5); the journal keeps the withdrawal
    const b2 = await lostTail.crash({ ...options, brokerId: 3 });
    await b2.publish(topic, [text('n0'), text('n1'), text('n2')]);
    const got = await b2.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.same(
      got.map((m) => m.body.toString()),
      ['m0', 'm1', 'm2', 'n0', 'n1', 'n2'],
      'the messages stored at the lost offsets are delivered',
    );
    // and after a second crash too (the trim is in the start-up snapshot)
    const b3 = await crashCopy(t, lostTail.dir, { ...options, brokerId: 3 });
    const again = await b3.receive(topic, laterGroup, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.same(
      again.map((m) => m.body.toString()),
      ['m0', 'm1', 'm2', 'n0', 'n1', 'n2'],
      'a second crash does not bring the withdrawal back',
    );
  },
);

t.test(
  'a message replay puts back in flight over a lost delivery entry still passes the tag filter',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const receiveA = (b: Broker) =>
      b.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: 'A' });
    await broker.publish(topic, [
      text('a0', { tag: 'A' }),
      text('b1', { tag: 'B' }),
      text('a2', { tag: 'A' }),
    ]);
    const [a0] = await receiveA(broker);
    // the journal refuses the next delivery entry (a full append queue): the read that passed
    // over b1 and handed out a2 is not on disk
    const appends = journalAppends(broker);
    appends.intercept((entries, append) => {
      if (!holdsOp(entries, /deliver/)) return append(entries);
      appends.restore();
      return Promise.reject(new Error('test: the append queue is full'));
    });
    const [a2] = await receiveA(broker);
    t.same([a0.body.toString(), a2.body.toString()], ['a0', 'a2']);
    const acks = await broker.ack(topic, group, [a0.receiptHandle, a2.receiptHandle]);
    t.ok(
      acks.every((r) => r.ok),
      'both acked',
    );
    const after = await crashCopy(t, harness.dir);
    t.same(await receiveA(after), [], 'b1, which the filter left out, is not delivered');
    await after.publish(topic, [text('a3', { tag: 'A' })]);
    t.same(
      (await receiveA(after)).map((m) => m.body.toString()),
      ['a3'],
    );
  },
);

t.test(
  'messages handed out by delivery entries the journal refused come back after a crash, a bounded batch at a time',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(
      topic,
      Array.from({ length: 50 }, (_, i) => text(`m${i}`)),
    );
    // the journal refuses the delivery entries of a first receive (a full append queue)...
    const appends = journalAppends(broker);
    appends.intercept((entries, append) =>
      holdsOp(entries, /deliver/)
        ? Promise.reject(new Error('test: the append queue is full'))
        : append(entries),
    );
    const lost = await broker.receive(topic, group, { maxMessages: 40, waitMs: 0, tags: '*' });
    t.equal(lost.length, 40, 'handed out: the answer does not wait for the journal');
    appends.restore();
    // ...and takes the next one, which read from past them, and its acks
    const later = await broker.receive(topic, group, { maxMessages: 40, waitMs: 0, tags: '*' });
    t.same(
      later.map((m) => m.body.toString()),
      Array.from({ length: 10 }, (_, i) => `m${40 + i}`),
    );
    const acks = await broker.ack(
      topic,
      group,
      later.map((m) => m.receiptHandle),
    );
    t.ok(
      acks.every((r) => r.ok),
      'acked',
    );

    const limit = 8;
    const after = await crashCopy(t, harness.dir, { limits: { maxInflightPerQueue: limit } });
    const cursor = [...after.ledger.allSubscriptions()][0]?.cursors.get(0);
    t.equal(cursor?.inflightCount, 0, 'the offsets passed over are not put in flight one by one');
    t.equal(cursor?.owedCount, 40, 'they are owed a delivery');
    const back: string[] = [];
    for (let round = 0; round < 10 && back.length < 40; round++) {
      const got = await after.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
      t.ok((cursor?.inflightCount ?? 0) <= limit, `in flight within the limit (${got.length})`);
      back.push(...got.map((m) => m.body.toString()));
      await after.ack(
        topic,
        group,
        got.map((m) => m.receiptHandle),
      );
    }
    t.same(
      back.sort(),
      Array.from({ length: 40 }, (_, i) => `m${i}`).sort(),
      'every message of the lost deliveries is delivered again, and only those',
    );
    t.same(await after.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' }), []);
    t.equal(cursor?.ackOffset, 50, 'all done');
  },
);

t.test(
  'a reset the journal refuses is answered with the error and not made, before or after a crash',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const receive = (b: Broker) =>
      b.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    await broker.publish(topic, [text('m0'), text('m1'), text('m2')]);
    const first = await receive(broker);
    await broker.ack(
      topic,
      group,
      first.map((m) => m.receiptHandle),
    );
    const appends = journalAppends(broker);
    appends.intercept((entries, append) =>
      holdsOp(entries, /reset/)
        ? Promise.reject(new WharfError('AppendQueueFull', 'test: the append queue is full'))
        : append(entries),
    );
    await t.rejects(broker.resetGroup(topic, group, 'earliest'), { code: 'AppendQueueFull' });
    appends.restore();
    t.same(await receive(broker), [], 'the cursor did not move: nothing is replayed');
    await broker.publish(topic, [text('m3')]);
    const next = await receive(broker);
    t.same(
      next.map((m) => m.body.toString()),
      ['m3'],
    );
    t.ok((await broker.ack(topic, group, [next[0].receiptHandle]))[0]?.ok, 'its handle is good');
    const after = await crashCopy(t, harness.dir);
    t.same(await receive(after), [], 'the same after a crash');
  },
);

t.test(
  'a cursor clamped by a read past its queue end stays clamped after a crash: what was delivered since is not skipped',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const receive = (b: Broker, maxMessages = 32) =>
      b.receive(topic, group, { maxMessages, waitMs: 0, tags: '*' });
    await broker.publish(
      topic,
      Array.from({ length: 5 }, (_, i) => text(`m${i}`)),
    );
    const first = await receive(broker);
    await broker.ack(
      topic,
      group,
      first.map((m) => m.receiptHandle),
    );
    await broker.publish(topic, [text('m5')]);
    // While the read at offset 5 is under way the queue is deleted: the read finds it ending at
    // 0, below the cursor, and clamps it there. No broker operation deletes a queue under a live
    // cursor (dropTopic, dropGroup and dropInstance drop the cursors first), so the store's own
    // deleteTopic, called behind the broker's back, stands in for one.
    const store = broker.store as unknown as {
      readQueue: (...args: unknown[]) => Promise<unknown>;
    };
    const readQueue = store.readQueue.bind(store);
    store.readQueue = async (...args) => {
      store.readQueue = readQueue;
      await broker.store.deleteTopic(storeTopic(topic));
      return readQueue(...args);
    };
    t.same(await receive(broker), [], 'the read found the queue shorter');
    const cursor = [...broker.ledger.allSubscriptions()][0]?.cursors.get(0);
    t.equal(cursor?.pullOffset, 0, 'clamped to the queue end');
    await broker.publish(topic, [text('n0'), text('n1')]);
    const next = await receive(broker, 1);
    t.same(
      next.map((m) => m.body.toString()),
      ['n0'],
      'read on from the clamped position',
    );
    await journalWritten(broker); // n0's delivery entry, which the receive did not wait for

    const after = await crashCopy(t, harness.dir);
    const replayed = [...after.ledger.allSubscriptions()][0]?.cursors.get(0);
    t.ok(replayed?.inflight.has(0), 'n0 is still in flight');
    t.same(
      (await receive(after)).map((m) => m.body.toString()),
      ['n1'],
      'n1, never delivered, is delivered',
    );
  },
);

t.test(
  'an instance drop whose ledger entries were refused, retried, then its names created again and a crash: every new message is delivered',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const { topic, group, receive } = await fiveAcked(broker);
    const appends = journalAppends(broker);
    appends.intercept((entries, append) =>
      holdsOp(entries, /dropTopic|dropGroup/)
        ? Promise.reject(new WharfError('AppendQueueFull', 'test: the append queue is full'))
        : append(entries),
    );
    await t.rejects(broker.dropInstance(topic.tenantId, topic.instanceId), {
      code: 'AppendQueueFull',
    });
    appends.restore();
    await broker.dropInstance(topic.tenantId, topic.instanceId); // the pending drop's retry
    const again = { ...topic, createdAt: topic.createdAt + 1 };
    const regroup = { ...group, createdAt: Date.now() - 1, incarnation: 'second' };
    const bodies = Array.from({ length: 7 }, (_, i) => `new-${i}`);
    await broker.publish(
      again,
      bodies.map((body) => text(body)),
    );
    await journalWritten(broker);
    const after = await crashCopy(t, harness.dir);
    t.same(
      (await receive(again, regroup, after)).map((m) => m.body.toString()),
      bodies,
      'the old cursor did not come back with the replay',
    );
  },
);

t.test(
  'FIFO: messages owed below an in-flight set at its limit come back first, then the rest in order',
  async (t) => {
    const { topic, group, sent, first, second, crash } = await fifoOwedBelowInflight(t);
    t.same(first, sent.slice(0, 10));
    t.same(second, sent.slice(10));
    // the ten in flight are past the limit of the restart
    const after = await crash({ limits: { maxInflightPerQueue: 8 } });
    const cursor = [...after.ledger.allSubscriptions()]
      .find((sub) => sub.cursors.get(0)?.owedCount === 10)
      ?.cursors.get(0);
    t.equal(cursor?.inflightCount, 10, 'ten in flight, over the limit of 8');
    t.same(
      await redeliverAll(after, topic, group, 20),
      sent,
      'everything is delivered again, in order',
    );
  },
);

/** Resets the group to its earliest offsets with the reset's journal write held (written, not
 *  yet answered) once this resolves; `release()` lets it finish and waits for it. */
async function heldReset(
  broker: Broker,
  topic: TopicDescriptor,
  group: GroupDescriptor,
): Promise<{ release(): Promise<void> }> {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let held = false;
  journalAppends(broker).intercept((entries, append) => {
    if (!holdsOp(entries, /reset/)) return append(entries);
    held = true;
    return append(entries).then(() => gate);
  });
  const resetting = broker.resetGroup(topic, group, 'earliest');
  await waitFor('the reset written and held', () => held);
  return {
    release: () => {
      open();
      return resetting;
    },
  };
}

t.test(
  'a reset waiting for the journal while its group is dropped does not bring the group back',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(topic, [text('m0'), text('m1')]);
    await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    // the reset's journal write is held until the drop is done
    const reset = await heldReset(broker, topic, group);
    await broker.dropGroup(group);
    t.same([...broker.ledger.allSubscriptions()], [], 'dropped');
    await reset.release();
    t.same([...broker.ledger.allSubscriptions()], [], 'the reset did not bring it back');
    const after = await crashCopy(t, harness.dir);
    t.same([...after.ledger.allSubscriptions()], [], 'nor does replay');
  },
);

t.test(
  'a reset waiting for the journal while its group is dropped and used again leaves the new one be',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(topic, [text('m0'), text('m1'), text('m2')]);
    const first = await broker.receive(topic, group, { maxMessages: 3, waitMs: 0, tags: '*' });
    await broker.ack(
      topic,
      group,
      first.map((m) => m.receiptHandle),
    );
    const reset = await heldReset(broker, topic, group);
    await broker.dropGroup(group);
    // the name is used again while the reset waits: a new group (a new incarnation) reads
    // from its creation
    const regroup = { ...group, incarnation: 'second' };
    await broker.publish(topic, [text('m3')]);
    const again = await broker.receive(topic, regroup, { maxMessages: 10, waitMs: 0, tags: '*' });
    await broker.ack(
      topic,
      regroup,
      again.map((m) => m.receiptHandle),
    );
    await reset.release();
    const after = await crashCopy(t, harness.dir);
    const next = async (b: Broker) =>
      (await b.receive(topic, regroup, { maxMessages: 10, waitMs: 0, tags: '*' })).map((m) =>
        m.body.toString(),
      );
    t.same(await next(broker), [], 'the old reset does not rewind the new group');
    t.same(await next(after), [], 'nor after a crash');
  },
);

t.test('a damaged record costs its message, not its queue: the rest is delivered', async (t) => {
  const harness = brokerHarness(t);
  // small segments: the damage is in a segment before the last (a restart checks the last one)
  const options = { trace: false, openedBodyCacheBytes: 0, store: { segmentBytes: 64 * 1024 } };
  const first = await harness.open(options);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const bodies = Array.from({ length: 300 }, (_, i) =>
    `${String(i).padStart(3, '0')}:`.repeat(150),
  );
  for (let i = 0; i < bodies.length; i += 30) {
    await first.publish(
      topic,
      bodies.slice(i, i + 30).map((body) => text(body)),
    );
  }
  await first.close();
  // a byte flipped inside the first message's record (the first segment's first record)
  const log = join(harness.dir, 'commitlog');
  const segments = readdirSync(log).sort();
  t.ok(segments.length > 1, 'more than one segment');
  const segment = join(log, segments[0]);
  const bytes = readFileSync(segment);
  bytes[300] ^= 0x20;
  writeFileSync(segment, bytes);
  const broker = await harness.open(options);
  const got = new Set<string>();
  for (let i = 0; i < 20 && got.size < 299; i++) {
    const received = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    for (const m of received) got.add(m.body.toString());
  }
  t.equal(got.size, 299, 'every other message');
  t.notOk(got.has(bodies[0]), 'not the damaged one');
  // a query by time pages past it too
  let queried = 0;
  let cursor: string | undefined;
  do {
    const page = await broker.queryByTime(topic, {
      fromMs: 0,
      toMs: Date.now() + 1000,
      limit: 64,
      ...(cursor === undefined ? {} : { cursor }),
    });
    queried += page.messages.length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  t.equal(queried, 299, 'a query by time lists the others');
  await broker.publish(topic, [text('after')]);
  const later = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
  t.match(later, [{ body: Buffer.from('after') }], 'and what comes after');
  t.equal(broker.stats().corruptMessagesSkipped, 1);
});

t.test(
  'under async flush, a half message stored at an offset lost with the log tail decides for itself',
  async (t) => {
    const { harness, options, b1, topic, group } = await asyncFlushBroker(t, {
      messageType: 'TRANSACTION',
    });
    const [kept] = await b1.publish(topic, [text('kept')]);
    await b1.commitTransaction(topic, kept.transactionId!);
    const lostTail = lostTailCrash(t, harness.dir);
    // stored and rolled back; the crash loses the half message, the journal keeps the rollback
    const [lost] = await b1.publish(topic, [text('lost')]);
    await b1.rollbackTransaction(topic, lost.transactionId!);
    const b2 = await lostTail.crash(options);
    const [fresh] = await b2.publish(topic, [text('fresh')]);
    // before: 409 "the transaction was already rolled back", and never delivered
    await b2.commitTransaction(topic, fresh.transactionId!);
    const got = await b2.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.same(
      got.map((m) => m.body.toString()).sort(),
      ['fresh', 'kept'],
      'the new half message, committed, is delivered',
    );
  },
);

t.test(
  'under async flush, a handle of a delivery lost with the log tail does not ack the next message at its offset',
  async (t) => {
    const { harness, options, b1, topic, group, receive } = await asyncFlushBroker(t);
    await b1.publish(topic, [text('m0')]);
    const [m0] = await receive(b1);
    await b1.ack(topic, group, [m0.receiptHandle]);
    const lostTail = lostTailCrash(t, harness.dir);
    await b1.publish(topic, [text('m1')]);
    const [m1] = await receive(b1);
    await journalWritten(b1); // the delivery is in the journal: only the log loses its tail
    const b2 = await lostTail.crash(options);
    await b2.publish(topic, [text('n1')]);
    const [n1] = await receive(b2);
    t.equal(n1.body.toString(), 'n1');
    t.equal(n1.queueOffset, m1.queueOffset, 'stored at the lost message’s offset');
    t.not(n1.messageId, m1.messageId, 'with a message id of its own (not at its log position)');
    t.same(
      (await b2.ack(topic, group, [m1.receiptHandle])).map((r) => (r.ok ? 'ok' : r.code)),
      ['ReceiptHandleExpired'],
      'the lost delivery’s handle is over',
    );
    t.same(
      (await b2.ack(topic, group, [n1.receiptHandle])).map((r) => r.ok),
      [true],
      'its own handle acks it',
    );
  },
);
