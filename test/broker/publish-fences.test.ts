// Publish fences against a real Redis: messages a broker stored under a gateway call id for
// which a fence was left are withdrawn — no group receives them, a waiting delayed message of the
// call is cancelled — while the same topic's other messages are delivered; the withdrawal is
// durable (a group that first receives after a restart does not get them either); a fence left
// while the broker was down is applied before it serves again; the fence is deleted once applied;
// a running broker applies a fence as soon as it is announced, not at its next look.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { Broker } from '../../src/broker/index.js';
import {
  MetaKeys,
  RedisPendingDrops,
  RedisPublishFenceSink,
  RedisPublishFences,
} from '../../src/meta/index.js';
import { FENCE_TTL_SECONDS } from '../../src/meta/publish-fences.js';
import { encodeRecord } from '../../src/meta/records.js';
import { STALL_GAP_MS } from '../../src/broker/stall-gate.js';
import { storeTopic } from '../../src/broker/names.js';
import { RedisScheduleWheel } from '../../src/meta/index.js';
import type { GroupDescriptor, PublishFence, TopicDescriptor } from '../../src/model/index.js';
import type { LedgerJournal } from '../../src/broker/ledger-journal.js';
import { brokerHarness, groupOf, text, topicOf } from '../helpers/broker.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

async function setup(t: Test, fenceIntervalMs = 20) {
  const server = await startTestRedis(t);
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const keys = new MetaKeys('test');
  const harness = brokerHarness(t);
  const open = () =>
    harness.open({
      brokerId: 3,
      publishFences: new RedisPublishFences(redis, keys, 3),
      fenceIntervalMs,
      scheduleWheel: new RedisScheduleWheel(redis, keys, '3'),
    });
  const sink = new RedisPublishFenceSink(redis, keys);
  const fencesLeft = () => redis.hlen(keys.publishFences(3));
  /** A fence for a call on queue 0 written without its announcement (a stopped broker hears of
   *  it only when it next looks). */
  const leaveUnannounced = (topic: TopicDescriptor, requestId: string) =>
    redis.hset(
      keys.publishFences(3),
      requestId,
      encodeRecord({ requestId, topic, queueIds: [0], sentAtMs: Date.now() }),
    );
  /** The broker opened, with a topic of one queue and a group (most tests' start). */
  const openOne = async () => ({
    broker: await open(),
    topic: topicOf({ queueCount: 1 }),
    group: groupOf(),
  });
  return { open, openOne, sink, fencesLeft, redis, keys, leaveUnannounced };
}

/** Holds the broker's next store append (a stalled disk): `appending` resolves once it is
 *  held, `release` lets it go on. */
function stallNextAppend(broker: Broker): { appending: Promise<void>; release: () => void } {
  const store = broker.store as unknown as { append: (...args: unknown[]) => Promise<unknown> };
  const append = store.append.bind(store);
  let entered!: () => void;
  const appending = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  store.append = async (...args: unknown[]) => {
    store.append = append;
    entered();
    await released;
    return append(...args);
  };
  return { appending, release };
}

async function drain(broker: Broker, topic: TopicDescriptor, group: GroupDescriptor) {
  const bodies: string[] = [];
  for (;;) {
    const got = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    if (got.length === 0) return bodies.sort();
    bodies.push(...got.map((m) => m.body.toString()));
    await broker.ack(
      topic,
      group,
      got.map((m) => m.receiptHandle),
    );
  }
}

t.test('a fenced call’s messages are withdrawn, durably; the others are delivered', async (t) => {
  const { open, sink, fencesLeft } = await setup(t);
  let broker = await open();
  const topic = topicOf({ queueCount: 2 });
  const group = groupOf();
  const later = groupOf(); // first receives after the restart
  const sentAtMs = Date.now();
  await broker.publish(topic, [
    text('lost-1', { queueId: 0, requestId: 'gw.1' }),
    text('lost-2', { queueId: 1, requestId: 'gw.1' }),
    text('kept-1', { queueId: 0, requestId: 'gw.2' }),
    text('kept-2', { queueId: 1 }),
  ]);
  const [delayed] = await broker.publish(topic, [
    text('lost-later', { queueId: 1, requestId: 'gw.1', deliverAtMs: Date.now() + 3_600_000 }),
  ]);
  const fence: PublishFence = { requestId: 'gw.1', topic, queueIds: [0, 1], sentAtMs };
  await sink.add(3, fence);
  await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
  t.equal(broker.fences?.withdrawn, 3, 'two stored messages withdrawn, one delayed cancelled');
  t.same(await drain(broker, topic, group), ['kept-1', 'kept-2']);
  t.equal(
    (await broker.getMessage(topic, delayed.messageId)).scheduleState,
    'CANCELLED',
    'the call’s delayed message is cancelled',
  );

  await broker.close();
  broker = await open();
  t.same(
    await drain(broker, topic, later),
    ['kept-1', 'kept-2'],
    'after a restart a new group does not get them either',
  );
});

t.test('a fence left while the broker was down is applied before it serves', async (t) => {
  const { open, sink, fencesLeft, redis, keys } = await setup(t);
  let broker = await open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const sentAtMs = Date.now();
  await broker.publish(topic, [
    text('stored-then-down', { queueId: 0, requestId: 'gw.9' }),
    text('answered', { queueId: 0, requestId: 'gw.10' }),
  ]);
  await broker.close();
  // a fence for a call the broker never stored is harmless: nothing carries its id
  await sink.add(3, { requestId: 'gw.never', topic, queueIds: [0], sentAtMs });
  await sink.add(3, { requestId: 'gw.9', topic, queueIds: [0], sentAtMs });
  // a decommissioned broker's fences do not stay for ever: the hash expires a week after the
  // last fence left for it
  const ttl = await redis.ttl(keys.publishFences(3));
  t.ok(ttl > FENCE_TTL_SECONDS - 60 && ttl <= FENCE_TTL_SECONDS, `fences expire (TTL ${ttl} s)`);
  broker = await open();
  t.equal(await fencesLeft(), 0, 'both applied by the time it opened');
  t.same(await drain(broker, topic, group), ['answered']);
});

t.test('a fence this version cannot read holds up no other fence', async (t) => {
  const { open, sink, redis, keys } = await setup(t);
  let broker = await open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const sentAtMs = Date.now();
  await broker.publish(topic, [
    text('stored-then-down', { queueId: 0, requestId: 'gw.9' }),
    text('answered', { queueId: 0, requestId: 'gw.10' }),
  ]);
  await broker.close();
  await redis.hset(keys.publishFences(3), 'gw.0', '{"v":99}');
  await sink.add(3, { requestId: 'gw.9', topic, queueIds: [0], sentAtMs });
  broker = await open();
  t.same(await drain(broker, topic, group), ['answered'], 'the readable fence was applied');
  t.same(await redis.hkeys(keys.publishFences(3)), ['gw.0'], 'the unreadable one left in place');
});

t.test('a pending drop that cannot be applied holds up no publish fence', async (t) => {
  const { sink, fencesLeft, redis, keys } = await setup(t);
  const harness = brokerHarness(t);
  const open = () =>
    harness.open({
      brokerId: 3,
      publishFences: new RedisPublishFences(redis, keys, 3),
      pendingDrops: new RedisPendingDrops(redis, keys, 3),
      fenceIntervalMs: 20,
      scheduleWheel: new RedisScheduleWheel(redis, keys, '3'),
    });
  let broker = await open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const sentAtMs = Date.now();
  await broker.publish(topic, [
    text('stored-then-down', { queueId: 0, requestId: 'gw.9' }),
    text('answered', { queueId: 0, requestId: 'gw.10' }),
  ]);
  await broker.close();
  // a drop this version cannot read (a newer gateway's kind, say) waits beside the fence
  await redis.hset(keys.pendingDrops(3), 'd.1', '{"v":99,"kind":"shard"}');
  await sink.add(3, { requestId: 'gw.9', topic, queueIds: [0], sentAtMs });
  broker = await open();
  t.equal(await fencesLeft(), 0, 'the fence applied by the time it opened');
  t.same(await drain(broker, topic, group), ['answered'], 'the fenced copy is not delivered');
  t.equal(
    await redis.hlen(keys.pendingDrops(3)),
    1,
    'the unreadable drop left for a broker that can',
  );
});

t.test('a running broker applies a fence as it is announced, not at its next look', async (t) => {
  // the look is an hour apart: only the announcement (pub/sub) can apply the fence in time
  const { open, sink, fencesLeft, redis, keys } = await setup(t, 3_600_000);
  const broker = await open();
  const subscribers = async () => {
    const [, count] = (await redis.pubsub('NUMSUB', keys.publishFenceChannel(3))) as [
      string,
      number,
    ];
    return count;
  };
  await waitFor(
    'the broker to subscribe to its fence channel',
    async () => (await subscribers()) === 1,
  );
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf(); // before the publish: a group reads from its creation on
  const sentAtMs = Date.now();
  await broker.publish(topic, [
    text('failed-over', { queueId: 0, requestId: 'gw.20' }),
    text('answered', { queueId: 0, requestId: 'gw.21' }),
  ]);
  await sink.add(3, { requestId: 'gw.20', topic, queueIds: [0], sentAtMs });
  await waitFor('the announced fence applied', async () => (await fencesLeft()) === 0);
  t.equal(broker.fences?.withdrawn, 1);
  t.same(await drain(broker, topic, group), ['answered']);
  await broker.close();
  await waitFor(
    'the fence subscription closed with the broker',
    async () => (await subscribers()) === 0,
  );
  t.pass('no subscriber left behind');
});

t.test(
  'a publish repeated with the dedupId of a copy a fence withdrew is stored again, not answered as a duplicate',
  async (t) => {
    const { openOne, sink, fencesLeft } = await setup(t);
    const { broker, topic, group } = await openOne();
    const sentAtMs = Date.now();
    // the first call stored both (its answer was lost: the gateway fenced it, the client got 503)
    const [first, firstLater] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.30', dedupId: 'payment-991' }),
      text('remind', {
        queueId: 0,
        requestId: 'gw.30',
        dedupId: 'reminder-7',
        deliverAtMs: Date.now() + 3_600_000,
      }),
    ]);
    await sink.add(3, { requestId: 'gw.30', topic, queueIds: [0], sentAtMs });
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    t.equal(broker.fences?.withdrawn, 2);

    // the client retries the call it was told failed, with the same dedupIds
    const [pay, remind] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.32', dedupId: 'payment-991' }),
      text('remind', {
        queueId: 0,
        requestId: 'gw.32',
        dedupId: 'reminder-7',
        deliverAtMs: Date.now() + 3_600_000,
      }),
    ]);
    t.not(pay.duplicate, true, 'stored again');
    t.not(pay.messageId, first.messageId);
    t.not(remind.duplicate, true, 'the delayed one too');
    t.not(remind.messageId, firstLater.messageId);
    t.equal((await broker.getMessage(topic, remind.messageId)).scheduleState, 'SCHEDULED');
    t.same(await drain(broker, topic, group), ['pay'], 'delivered once');
    // and a repeat of the retry is a duplicate of the new copy
    const [repeat] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.33', dedupId: 'payment-991' }),
    ]);
    t.equal(repeat.duplicate, true);
    t.equal(repeat.messageId, pay.messageId);
  },
);

t.test(
  'a retry after the 503 whose fence is not applied yet is stored, not answered with the fenced copy',
  async (t) => {
    // the look is an hour apart and the fence is not announced: the retry comes first
    const { openOne, leaveUnannounced, fencesLeft } = await setup(t, 3_600_000);
    const { broker, topic, group } = await openOne();
    const [first] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.34', dedupId: 'payment-992' }),
    ]);
    // its gateway gave up on the call and fenced it before answering the client 503
    await leaveUnannounced(topic, 'gw.34');
    const [retry] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.35', dedupId: 'payment-992' }),
    ]);
    t.not(retry.duplicate, true, 'stored again: the fenced copy is withdrawn');
    t.not(retry.messageId, first.messageId);
    t.equal(await fencesLeft(), 0, 'the fence applied before the answer');
    t.same(await drain(broker, topic, group), ['pay'], 'delivered once, not lost');
  },
);

t.test('a retry that waited for the fenced call still being stored is stored itself', async (t) => {
  const { openOne, leaveUnannounced } = await setup(t, 3_600_000);
  const { broker, topic, group } = await openOne();
  // the first call's append stalls past its gateway's deadline; the gateway fences it and
  // answers 503; the client retries while the first call is still being stored
  const { appending, release } = stallNextAppend(broker);
  const stalled = broker.publish(topic, [
    text('pay', { queueId: 0, requestId: 'gw.36', dedupId: 'payment-993' }),
  ]);
  await appending;
  await leaveUnannounced(topic, 'gw.36');
  const retried = broker.publish(topic, [
    text('pay', { queueId: 0, requestId: 'gw.37', dedupId: 'payment-993' }),
  ]);
  release();
  const [[first], [retry]] = await Promise.all([stalled, retried]);
  t.not(retry.duplicate, true, 'not answered with the fenced copy');
  t.not(retry.messageId, first.messageId);
  t.same(await drain(broker, topic, group), ['pay'], 'delivered once, not lost');
});

t.test(
  'a copy answered to a repeat as its duplicate is kept when its call’s fence comes after',
  async (t) => {
    const { openOne, sink, fencesLeft } = await setup(t);
    const { broker, topic, group } = await openOne();
    const sentAtMs = Date.now();
    const [first] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.38', dedupId: 'payment-994' }),
    ]);
    // a client that gave up before the gateway did repeats the call: told it is stored
    const [again] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.39', dedupId: 'payment-994' }),
    ]);
    t.equal(again.duplicate, true);
    t.equal(again.messageId, first.messageId);
    // then the first call's gateway fences it (and stores it on another broker)
    await sink.add(3, { requestId: 'gw.38', topic, queueIds: [0], sentAtMs });
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    t.equal(broker.fences?.withdrawn, 0, 'the copy a client holds is not withdrawn');
    t.same(await drain(broker, topic, group), ['pay'], 'delivered (twice at worst), not lost');
  },
);

t.test(
  'a copy answered to a repeat as its duplicate is kept by its call’s fence after a restart',
  async (t) => {
    const { open, sink, fencesLeft } = await setup(t);
    let broker = await open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const sentAtMs = Date.now();
    await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.44', dedupId: 'payment-995' }),
    ]);
    const [again] = await broker.publish(topic, [
      text('pay', { queueId: 0, requestId: 'gw.45', dedupId: 'payment-995' }),
    ]);
    t.equal(again.duplicate, true, 'the client is told it is stored');
    // a rolling restart, then the first call's gateway fences it
    await broker.close();
    broker = await open();
    await sink.add(3, { requestId: 'gw.44', topic, queueIds: [0], sentAtMs });
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    t.equal(broker.fences?.withdrawn, 0, 'the vouch outlived the restart');
    t.same(await drain(broker, topic, group), ['pay'], 'delivered, not lost');
  },
);

t.test(
  'a fenced call stored after its fence’s scan is not delivered before its withdrawal is written',
  async (t) => {
    const { openOne, sink, fencesLeft } = await setup(t);
    const { broker, topic, group } = await openOne();
    const { appending, release } = stallNextAppend(broker);
    const sentAtMs = Date.now();
    const stalled = broker.publish(topic, [text('late', { queueId: 0, requestId: 'gw.42' })]);
    await appending;
    await sink.add(3, { requestId: 'gw.42', topic, queueIds: [0], sentAtMs });
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    // the withdrawal's journal write is slow (a busy disk)
    const { journal } = (broker as unknown as { core: { journal: LedgerJournal } }).core;
    const record = journal.record.bind(journal);
    let writing!: () => void;
    const withdrawing = new Promise<void>((resolve) => (writing = resolve));
    let releaseWrite!: () => void;
    const written = new Promise<void>((resolve) => (releaseWrite = resolve));
    journal.record = async (entries) => {
      if (entries.some((entry) => 'op' in entry && entry.op === 'withdraw')) {
        writing();
        await written;
      }
      return record(entries);
    };
    release();
    await withdrawing; // stored, readable, its withdrawal not written yet
    const got = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.same(
      got.map((m) => m.body.toString()),
      [],
      'the fenced copy is passed over meanwhile',
    );
    releaseWrite();
    await stalled;
    t.equal(broker.fences?.withdrawn, 1);
    await broker.publish(topic, [text('other', { queueId: 0, requestId: 'gw.43' })]);
    t.same(await drain(broker, topic, group), ['other']);
  },
);

t.test(
  'a publish still being stored when its call is fenced is withdrawn once stored',
  async (t) => {
    const { openOne, sink, fencesLeft } = await setup(t);
    const { broker, topic, group } = await openOne();
    // the call's append stalls (a slow disk) past the gateway's deadline
    const { appending, release } = stallNextAppend(broker);
    const sentAtMs = Date.now();
    const stalled = broker.publish(topic, [text('late', { queueId: 0, requestId: 'gw.40' })]);
    await appending;
    // the gateway gave up on it, stored the message elsewhere and fenced the call here
    await sink.add(3, { requestId: 'gw.40', topic, queueIds: [0], sentAtMs });
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    t.equal(broker.fences?.withdrawn, 0, 'nothing of the call was stored yet');
    release();
    await stalled;
    t.equal(broker.fences?.withdrawn, 1, 'withdrawn as it was stored');
    await broker.publish(topic, [text('other', { queueId: 0, requestId: 'gw.41' })]);
    t.same(await drain(broker, topic, group), ['other'], 'only the other call is delivered');
  },
);

t.test(
  'a repeat of a dedupId answered early in a batch still being stored is answered, not spun on',
  async (t) => {
    // any broker (here one without fences: its only append is the batch's)
    const broker = await brokerHarness(t).open({ brokerId: 3 });
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const [first] = await broker.publish(topic, [
      text('a', { queueId: 0, requestId: 'gw.70', dedupId: 'dup-a' }),
    ]);
    // a batch: `a` again (a duplicate, answered at once) and `b`, whose append stalls
    const { appending, release } = stallNextAppend(broker);
    const batch = broker.publish(topic, [
      text('a', { queueId: 0, requestId: 'gw.71', dedupId: 'dup-a' }),
      text('b', { queueId: 0, requestId: 'gw.71', dedupId: 'dup-b' }),
    ]);
    await appending;
    // another repeat of `a` meanwhile: the event loop must go on (the stalled append's timer)
    const [again] = await broker.publish(topic, [
      text('a', { queueId: 0, requestId: 'gw.72', dedupId: 'dup-a' }),
    ]);
    t.equal(again.duplicate, true);
    t.equal(again.messageId, first.messageId);
    release();
    const [a] = await batch;
    t.equal(a.messageId, first.messageId);
    t.same(await drain(broker, topic, group), ['a', 'b']);
  },
);

t.test('a delayed message its user cancelled stays a duplicate for its dedupId', async (t) => {
  const { open } = await setup(t);
  const broker = await open();
  const topic = topicOf({ queueCount: 1 });
  const later = () => Date.now() + 3_600_000;
  const [first] = await broker.publish(topic, [
    text('remind', { queueId: 0, requestId: 'gw.50', dedupId: 'reminder-8', deliverAtMs: later() }),
  ]);
  await broker.cancelMessage(topic, first.messageId);
  const [again] = await broker.publish(topic, [
    text('remind', { queueId: 0, requestId: 'gw.51', dedupId: 'reminder-8', deliverAtMs: later() }),
  ]);
  t.equal(again.duplicate, true, 'the cancel stands');
  t.equal(again.messageId, first.messageId);
});

t.test(
  'a publish of the call that is stored while its fence scans the queue is withdrawn too',
  async (t) => {
    const { openOne, sink, fencesLeft } = await setup(t);
    const { broker, topic, group } = await openOne();
    await broker.publish(topic, [text('earlier', { queueId: 0, requestId: 'gw.59' })]);
    const store = broker.store as unknown as {
      readQueue: (...args: unknown[]) => Promise<unknown>;
    };
    // the call's append stalls until the fence's scan has read to the queue's end (without it)
    const { appending, release: releaseAppend } = stallNextAppend(broker);
    const readQueue = store.readQueue.bind(store);
    let scanRead!: () => void;
    const scanned = new Promise<void>((resolve) => (scanRead = resolve));
    let releaseScan!: () => void;
    const scanReleased = new Promise<void>((resolve) => (releaseScan = resolve));
    let gateScan = true;
    store.readQueue = async (...args: unknown[]) => {
      const result = (await readQueue(...args)) as { messages: unknown[] };
      // the scan's last read: the page past the end, empty
      if (gateScan && args[0] === storeTopic(topic) && result.messages.length === 0) {
        gateScan = false;
        scanRead();
        await scanReleased;
      }
      return result;
    };
    const sentAtMs = Date.now();
    const stalled = broker.publish(topic, [text('late', { queueId: 0, requestId: 'gw.60' })]);
    await appending;
    await sink.add(3, { requestId: 'gw.60', topic, queueIds: [0], sentAtMs });
    await scanned; // the fence read the queue to its end: nothing of the call there yet
    releaseAppend();
    await stalled; // stored now, while the scan is still under way
    releaseScan();
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    t.equal(broker.fences?.withdrawn, 1, 'withdrawn once');
    t.same(await drain(broker, topic, group), ['earlier'], 'the call is not delivered');
  },
);

t.test(
  'a copy taken by a receive before its fence came is not delivered again once withdrawn',
  async (t) => {
    const { openOne, sink, fencesLeft } = await setup(t);
    const { broker, topic, group } = await openOne();
    const sentAtMs = Date.now();
    await broker.publish(topic, [
      text('failed over', { queueId: 0, requestId: 'gw.9' }),
      text('kept', { queueId: 0, requestId: 'gw.10' }),
    ]);
    // a receive took both (its answer lost on the way, say): in flight for the group
    const taken = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.equal(taken.length, 2);
    await sink.add(3, { requestId: 'gw.9', topic, queueIds: [0], sentAtMs });
    await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
    // both visible again at once: the withdrawn one is done for the group, the other comes back
    for (const message of taken)
      await broker.changeVisibility(topic, group, message.receiptHandle, 0);
    t.same(
      await drain(broker, topic, group),
      ['kept'],
      'its failed-over twin is the one delivered',
    );
  },
);

t.test('a withdrawn copy on its last attempt is done, not a dead letter', async (t) => {
  const { open, sink, fencesLeft } = await setup(t);
  const broker = await open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1 });
  const sentAtMs = Date.now();
  await broker.publish(topic, [text('failed over', { queueId: 0, requestId: 'gw.11' })]);
  const [taken] = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
  await sink.add(3, { requestId: 'gw.11', topic, queueIds: [0], sentAtMs });
  await waitFor('the fence applied', async () => (await fencesLeft()) === 0);
  await broker.changeVisibility(topic, group, taken.receiptHandle, 0);
  await waitFor('its delivery done for the group', async () => {
    await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    return (await broker.groupStats(topic, group)).inflight === 0;
  });
  t.same((await broker.deadLetters(group, 10)).messages, [], 'no dead letter of it');
  t.match(await broker.groupStats(topic, group), { backlog: 0, deadLetters: 0 });
});

/** Stands the process still for `ms` (as SIGSTOP or a frozen volume does): no timer, no I/O. */
function standStill(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

t.test(
  'after the broker stood still, a fence left meanwhile is applied before it serves on',
  async (t) => {
    // the interval does not come round in this test, and the fences are written without their
    // announcement: what reaches the broker first after the stall is the calls queued on its
    // sockets, as a stopped process reads them before anything else
    const { openOne, fencesLeft, leaveUnannounced } = await setup(t, 600_000);
    const { broker, topic, group } = await openOne();
    const leave = (requestId: string) => leaveUnannounced(topic, requestId);
    // a call stored as the stall began: its gateway's deadline passed during the stall
    await broker.publish(topic, [text('stored-as-it-stalled', { queueId: 0, requestId: 'gw.s1' })]);
    await leave('gw.s1');
    // a call queued on the socket during the stall, failed over meanwhile
    await leave('gw.s2');
    standStill(STALL_GAP_MS + 300);
    const queued = broker.publish(topic, [
      text('queued-in-the-stall', { queueId: 0, requestId: 'gw.s2' }),
    ]);
    const received = broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    await t.rejects(queued, { code: 'Unavailable' }, 'the fenced call is refused, not stored');
    t.same(
      (await received).map((m) => m.body.toString()),
      [],
      'the receive queued with it does not get the copy stored as the stall began',
    );
    t.equal(await fencesLeft(), 0, 'both fences applied');
    await broker.publish(topic, [text('after', { queueId: 0, requestId: 'gw.s3' })]);
    t.same(await drain(broker, topic, group), ['after'], 'neither copy is ever delivered');
    await broker.close();
  },
);

t.test(
  'after a stall, a fence round that fails (Redis reset on waking) is tried again before serving',
  async (t) => {
    const { redis, keys, leaveUnannounced } = await setup(t);
    const source = new RedisPublishFences(redis, keys, 3);
    let failNext = false;
    const failing = Object.assign(Object.create(source) as RedisPublishFences, {
      pending: (max: number) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('Command timed out'));
        }
        return source.pending(max);
      },
    });
    const broker = await brokerHarness(t).open({
      brokerId: 3,
      publishFences: failing,
      fenceIntervalMs: 600_000,
      scheduleWheel: new RedisScheduleWheel(redis, keys, '3'),
    });
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await leaveUnannounced(topic, 'gw.f1'); // a call queued on the socket, failed over meanwhile
    failNext = true; // the first read after the stall fails
    standStill(STALL_GAP_MS + 300);
    const queued = broker.publish(topic, [text('queued', { queueId: 0, requestId: 'gw.f1' })]);
    await t.rejects(queued, { code: 'Unavailable' }, 'refused once a later round applied it');
    t.same(await drain(broker, topic, group), [], 'never delivered');
    await broker.close();
  },
);

t.test(
  'a receive parked across a stall looks again only once the fences are applied',
  async (t) => {
    const { openOne, leaveUnannounced } = await setup(t, 600_000);
    const { broker, topic, group } = await openOne();
    // parked before the stall, its wait ends during it: its last look comes first after it
    const parked = broker.receive(topic, group, { maxMessages: 32, waitMs: 800, tags: '*' });
    await waitFor('the receive to park', () => broker.longPoll.parkedCount === 1);
    // a call's copy stored as the stall began: its wake of the parked receive is still to come
    // when the process stops (held here, given after the stall), and its gateway's fence is
    // left during the stall
    const longPoll = broker.longPoll as unknown as { notify: (name: string) => void };
    const notify = longPoll.notify.bind(longPoll);
    const held: string[] = [];
    longPoll.notify = (name) => void held.push(name);
    await broker.publish(topic, [text('stored-as-it-stalled', { queueId: 0, requestId: 'gw.p1' })]);
    longPoll.notify = notify;
    await leaveUnannounced(topic, 'gw.p1');
    t.equal(broker.longPoll.parkedCount, 1, 'still parked as the stall begins');
    standStill(STALL_GAP_MS + 300);
    for (const name of held) notify(name);
    t.same(
      (await parked).map((m) => m.body.toString()),
      [],
      'the fenced copy is withdrawn before the parked receive looks',
    );
    await broker.close();
  },
);
