// Interleavings and failures around the POP receive: an ack, reset or drop landing while a
// receive awaits a store read; a dead-letter move cut by a crash; a journal entry refused; the
// reserved name prefix; long polls that must neither spin nor stampede. (From a review: each
// test failed against the first version of the broker.)
import t from 'tap';
import type { Broker } from '../../src/broker/index.js';
import type { BrokerCore } from '../../src/broker/broker-core.js';
import { ConsumerLedger } from '../../src/broker/consumer-ledger.js';
import { QueueCursor } from '../../src/broker/queue-cursor.js';
import { WharfError } from '../../src/errors.js';
import {
  brokerHarness,
  crashCopy,
  fiveAcked,
  groupOf,
  holdsOp,
  journalAppends,
  text,
  topicOf,
} from '../helpers/broker.js';
import { waitFor, waitUntilPast } from '../helpers/wait-for.js';

/** Hold the store's readQueue once armed: the read completes, its result is handed back only at
 *  release() (models a slow pread; every await inside readQueue is already such an interleaving
 *  point). arm() resolves once an armed read has its result, so the racing operation is made to
 *  land while a receive awaits its read: an order of events, not a guessed delay. */
function gatedReads(broker: Broker): { arm: () => Promise<void>; release: () => void } {
  const store = broker.store as unknown as { readQueue: (...a: unknown[]) => Promise<unknown> };
  const orig = store.readQueue.bind(store);
  let gate: { reading: () => void; opened: Promise<void> } | undefined;
  let open = (): void => undefined;
  store.readQueue = async (...args: unknown[]) => {
    const held = gate;
    const result = await orig(...args);
    if (held !== undefined) {
      held.reading();
      await held.opened;
    }
    return result;
  };
  return {
    arm: () =>
      new Promise<void>((reading) => {
        const opened = new Promise<void>((resolve) => (open = resolve));
        gate = { reading, opened };
      }),
    release: () => {
      gate = undefined;
      open();
    },
  };
}

/** A counter of the elements of `map` touched (looked up or iterated over) from now on. */
function countTouches<K, V>(map: Map<K, V>): () => number {
  let touches = 0;
  const get = map.get.bind(map);
  const has = map.has.bind(map);
  map.get = (key: K) => (touches++, get(key));
  map.has = (key: K) => (touches++, has(key));
  const counted =
    <T>(iterate: () => IterableIterator<T>) =>
    () =>
      (function* () {
        for (const item of iterate()) {
          touches++;
          yield item;
        }
      })() as MapIterator<T>;
  map.keys = counted(map.keys.bind(map));
  map.values = counted(map.values.bind(map));
  map.entries = counted(map.entries.bind(map));
  map[Symbol.iterator] = counted(map[Symbol.iterator].bind(map));
  const forEach = map.forEach.bind(map);
  map.forEach = (fn, thisArg?: unknown) =>
    forEach((v, k, m) => (touches++, fn.call(thisArg, v, k, m)));
  return () => touches;
}

t.test(
  'a visibility extension landing while a redelivery is read wins: the message stays invisible',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const slow = gatedReads(broker);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
    await broker.publish(topic, [text('x')]);
    const options = { maxMessages: 1, waitMs: 0, tags: '*', invisibleMs: 100 };
    const [first] = await broker.receive(topic, group, options);
    await waitUntilPast(first.nextVisibleTime);
    const reading = slow.arm();
    const second = broker.receive(topic, group, options);
    await reading; // the receive took the due message and is reading it
    const extended = await broker.changeVisibility(topic, group, first.receiptHandle, 60_000);
    t.ok(extended.nextVisibleTime > Date.now() + 50_000, 'the extension is accepted');
    slow.release();
    t.same(await second, [], 'not handed out to another consumer');
    t.same(
      (await broker.ack(topic, group, [first.receiptHandle])).map((a) => a.ok),
      [true],
      'the consumer that extended it acks it',
    );
  },
);

t.test(
  'an ack landing while a redelivery is read wins: the acked message is not handed out again',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const slow = gatedReads(broker);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
    await broker.publish(topic, [text('x')]);
    const [first] = await broker.receive(topic, group, {
      maxMessages: 1,
      waitMs: 0,
      tags: '*',
      invisibleMs: 100,
    });
    await waitUntilPast(first.nextVisibleTime); // due for redelivery (no back-off)
    const reading = slow.arm();
    const second = broker.receive(topic, group, {
      maxMessages: 1,
      waitMs: 0,
      tags: '*',
      invisibleMs: 100,
    });
    await reading; // the receive took the due offset and is reading it
    const ack = await broker.ack(topic, group, [first.receiptHandle]);
    t.same(ack, [{ receiptHandle: first.receiptHandle, ok: true }], 'the ack is accepted');
    slow.release();
    const again = await second;
    t.equal(again.length, 0, 'an acked message must not be handed out again');
    if (again.length > 0) {
      const ack2 = await broker.ack(topic, group, [again[0].receiptHandle]);
      t.comment(
        `duplicate attempt ${again[0].deliveryAttempt}; ack of the duplicate: ${JSON.stringify(ack2)}`,
      );
      await waitUntilPast(again[0].nextVisibleTime);
      const third = await broker.receive(topic, group, {
        maxMessages: 1,
        waitMs: 0,
        tags: '*',
        invisibleMs: 100,
      });
      t.equal(third.length, 0, 'acked twice, must not come back a third time');
      t.comment(`third delivery attempt: ${third[0]?.deliveryAttempt}`);
      t.equal((await broker.groupStats(topic, group)).inflight, 0, 'nothing in flight');
    }
  },
);

t.test(
  'a reset to earliest racing a receive holds: the group replays from the start',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const slow = gatedReads(broker);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(
      topic,
      Array.from({ length: 10 }, (_, i) => text(`old-${i}`)),
    );
    const got = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    await broker.ack(
      topic,
      group,
      got.map((m) => m.receiptHandle),
    );
    await broker.publish(
      topic,
      Array.from({ length: 5 }, (_, i) => text(`new-${i}`)),
    );
    const reading = slow.arm();
    const pending = broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    await reading;
    await broker.resetGroup(topic, group, 'earliest');
    slow.release();
    const during = await pending;
    t.comment(`receive racing the reset got ${during.length}`);
    const replay = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.equal(
      replay.filter((m) => m.body.toString().startsWith('old')).length,
      10,
      'reset to earliest replays the 10 old messages',
    );
  },
);

t.test('FIFO: a reset to latest racing a receive leaves nothing stuck in flight', async (t) => {
  const broker = await brokerHarness(t).open();
  const slow = gatedReads(broker);
  const topic = topicOf({ queueCount: 1, messageType: 'FIFO' });
  const group = groupOf();
  await broker.publish(
    topic,
    Array.from({ length: 5 }, (_, i) => text(`m${i}`, { shardingKey: 'k' })),
  );
  const reading = slow.arm();
  const pending = broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
  await reading;
  await broker.resetGroup(topic, group, 'latest');
  slow.release();
  const during = await pending;
  t.comment(`racing receive got ${during.length} messages from before the reset`);
  const acks = await broker.ack(
    topic,
    group,
    during.map((m) => m.receiptHandle),
  );
  t.comment(`their acks: ${acks.map((a) => a.ok).join(',')}`);
  await broker.publish(topic, [text('after', { shardingKey: 'k' })]);
  const next = await broker.receive(topic, group, { maxMessages: 32, waitMs: 500, tags: '*' });
  t.same(
    next.map((m) => m.body.toString()),
    ['after'],
    'the message published after the reset is delivered',
  );
  await broker.ack(
    topic,
    group,
    next.map((m) => m.receiptHandle),
  );
  t.equal((await broker.groupStats(topic, group)).inflight, 0, 'nothing is stuck in flight');
});

t.test(
  'a topic deleted during a receive and created again delivers its new messages',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const slow = gatedReads(broker);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(
      topic,
      Array.from({ length: 20 }, (_, i) => text(`old-${i}`)),
    );
    const reading = slow.arm();
    const pending = broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    await reading;
    await broker.dropTopic(topic);
    slow.release();
    await pending;
    // the topic is created again under the same name (a new createdAt, as through the API)
    const again = { ...topic, createdAt: topic.createdAt + 1 };
    await broker.publish(again, [text('new-0'), text('new-1'), text('new-2')]);
    const got = await broker.receive(again, group, { maxMessages: 32, waitMs: 300, tags: '*' });
    t.same(
      got.map((m) => m.body.toString()).sort(),
      ['new-0', 'new-1', 'new-2'],
      "the group gets the new topic's messages",
    );
  },
);

/** Runs `before` once, just before the store's next queue read starts: what it does lands while
 *  a receive is under way, and the read sees it. */
function beforeNextRead(broker: Broker, before: () => Promise<void>): void {
  const store = broker.store as unknown as { readQueue: (...a: unknown[]) => Promise<unknown> };
  const orig = store.readQueue.bind(store);
  store.readQueue = async (...args: unknown[]) => {
    store.readQueue = orig;
    await before();
    return orig(...args);
  };
}

t.test(
  'an instance dropped under a read and its names created again: every message published since is delivered',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const { topic, group, receive } = await fiveAcked(broker);
    await broker.publish(topic, [text('old-5')]);
    // The read at offset 5 runs after the instance is dropped (without a topic drop before it:
    // one that failed, or a caller that skipped it) and its names are created again with two
    // messages: the queue ends at 2, below the group's cursor, where offsets 0 and 1 were acked.
    let again = topic;
    let regroup = group;
    beforeNextRead(broker, async () => {
      await broker.dropInstance(topic.tenantId, topic.instanceId);
      again = { ...topic, createdAt: topic.createdAt + 1 };
      regroup = { ...group, createdAt: Date.now(), incarnation: 'second' };
      await broker.publish(again, [text('new-0'), text('new-1')]);
    });
    const during = await receive(topic, group);
    t.same(
      during.map((m) => m.body.toString()),
      [],
      'nothing of the dropped instance is handed out',
    );
    await broker.publish(again, [text('new-2')]);
    const got = await receive(again, regroup);
    t.same(
      got.map((m) => m.body.toString()),
      ['new-0', 'new-1', 'new-2'],
      'the group created again gets every message of the topic created again',
    );
  },
);

t.test('a receive parked on a topic of a dropped instance answers at once, empty', async (t) => {
  for (const written of [true, false]) {
    // a topic never written has no queue in the store, only the receive's subscription
    const broker = await brokerHarness(t).open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    if (written) {
      await broker.publish(topic, [text('m0')]);
      const [m0] = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
      await broker.ack(topic, group, [m0.receiptHandle]);
    }
    // a wait far past this test's own timeout: only a wake-up ends it in time
    const parked = broker.receive(topic, group, { maxMessages: 1, waitMs: 600_000, tags: '*' });
    await waitFor('the receive to park', () => broker.longPoll.parkedCount === 1);
    await broker.dropInstance(topic.tenantId, topic.instanceId);
    t.same(await parked, [], `woken by the drop, nothing handed out (written: ${written})`);
    t.equal(broker.longPoll.parkedCount, 0);
  }
});

t.test('receives parked on a dropped group answer at once, empty', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  // a wait far past this test's own timeout: only a wake-up ends it in time; two of them (a
  // notify wakes one receive of a subscription, the woken one passes it on)
  const parked = [1, 2].map(() =>
    broker.receive(topic, group, { maxMessages: 1, waitMs: 600_000, tags: '*' }),
  );
  await waitFor('the receives to park', () => broker.longPoll.parkedCount === 2);
  await broker.dropGroup(group);
  t.same(await Promise.all(parked), [[], []], 'woken by the drop, nothing handed out');
  t.equal(broker.longPoll.parkedCount, 0);
});

t.test(
  "calls with a dropped group's or topic's descriptor are refused; the ones created again start fresh",
  async (t) => {
    // A gateway's cached descriptor, or a receive resolved just before the delete: the broker
    // started a new cursor under the dropped name and delivered the old messages again, and a
    // group created again under the name inherited that cursor.
    const broker = await brokerHarness(t).open();
    const { topic, group, receive } = await fiveAcked(broker);
    await broker.dropGroup(group);
    await t.rejects(
      broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' }),
      { code: 'GroupNotFound' },
      'the stale descriptor is refused',
    );
    await t.rejects(broker.ack(topic, group, ['x']), { code: 'GroupNotFound' });
    await t.rejects(broker.resetGroup(topic, group, 'earliest'), { code: 'GroupNotFound' });
    // and a topic: a publish with its old descriptor would store under the dropped name
    const other = topicOf({ queueCount: 1 });
    await broker.publish(other, [text('kept')]);
    await broker.dropTopic(other);
    await t.rejects(broker.publish(other, [text('late')]), { code: 'TopicNotFound' });
    const otherAgain = { ...other, createdAt: other.createdAt + 1 };
    // a group made before the publish: one made after it would start past the message
    const reader = groupOf();
    await broker.publish(otherAgain, [text('fresh')]);
    t.same(
      (await receive(otherAgain, reader)).map((m) => m.body.toString()),
      ['fresh'],
      'the topic created again holds only its own message',
    );
    const storedBy = Date.now();
    await waitUntilPast(storedBy); // created strictly after the old messages
    const recreated = { ...group, createdAt: Date.now(), incarnation: 'second' };
    await broker.publish(topic, [text('new-0')]);
    t.same(
      (await receive(topic, recreated)).map((m) => m.body.toString()),
      ['new-0'],
      'only what was stored after its creation',
    );
  },
);

t.test("a publish overtaken by its topic's drop stores nothing under the name", async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1 });
  await broker.publish(topic, [text('kept')]);
  // the drop lands while the publish looks up its dedupId in the store
  const store = broker.store as unknown as { queryByKey: (...a: unknown[]) => Promise<unknown> };
  const lookup = store.queryByKey.bind(store);
  store.queryByKey = async (...args: unknown[]) => {
    store.queryByKey = lookup;
    await broker.dropTopic(topic);
    return lookup(...args);
  };
  await t.rejects(broker.publish(topic, [text('late', { dedupId: 'd-1' })]), {
    code: 'TopicNotFound',
  });
  const successor = { ...topic, createdAt: topic.createdAt + 1 };
  // a group made before the publish: one made after it would start past the message
  const reader = groupOf();
  await broker.publish(successor, [text('fresh')]);
  const got = await broker.receive(successor, reader, { maxMessages: 32, waitMs: 0, tags: '*' });
  t.same(
    got.map((m) => m.body.toString()),
    ['fresh'],
    'the topic created again holds only its own message',
  );
});

t.test('a first receive racing an instance drop answers empty, not an error', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await broker.publish(topic, [text('m0')]);
  // the drop lands while the receive looks up where its new cursors start
  const store = broker.store as unknown as {
    queueOffsetByTime: (...args: unknown[]) => Promise<number>;
  };
  const lookup = store.queueOffsetByTime.bind(store);
  store.queueOffsetByTime = async (...args: unknown[]) => {
    store.queueOffsetByTime = lookup;
    await broker.dropInstance(topic.tenantId, topic.instanceId);
    return lookup(...args);
  };
  t.same(await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' }), []);
});

t.test(
  'an instance dropped and its names created again past the old cursor: the messages below it are delivered',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const { topic, group, receive } = await fiveAcked(broker);
    await broker.dropInstance(topic.tenantId, topic.instanceId);
    const again = { ...topic, createdAt: topic.createdAt + 1 };
    const regroup = { ...group, createdAt: Date.now(), incarnation: 'second' };
    const bodies = Array.from({ length: 7 }, (_, i) => `new-${i}`);
    await broker.publish(
      again,
      bodies.map((body) => text(body)),
    );
    const got = await receive(again, regroup);
    t.same(
      got.map((m) => m.body.toString()),
      bodies,
      'every message of the topic created again, from its first',
    );
  },
);

t.test(
  'a group dropped during a receive and created again gets nothing stored before its creation',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const slow = gatedReads(broker);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
    await broker.publish(
      topic,
      Array.from({ length: 5 }, (_, i) => text(`old-${i}`)),
    );
    const storedBy = Date.now();
    const reading = slow.arm();
    const pending = broker.receive(topic, group, {
      maxMessages: 32,
      waitMs: 0,
      tags: '*',
      invisibleMs: 100,
    });
    await reading;
    await broker.dropGroup(group);
    slow.release();
    const during = await pending;
    await waitUntilPast(storedBy); // the new group is created strictly after the old messages
    const recreated = { ...group, createdAt: Date.now() };
    // what the dropped group had in flight would be due again by now
    await waitUntilPast(Math.max(recreated.createdAt, ...during.map((m) => m.nextVisibleTime)));
    const got = await broker.receive(topic, recreated, { maxMessages: 32, waitMs: 0, tags: '*' });
    t.same(
      got.map((m) => m.body.toString()),
      [],
      'a new group gets nothing stored before its creation',
    );
  },
);

t.test(
  'an offset held by a dead-letter move is due again after a snapshot is restored',
  async (t) => {
    const ledger = new ConsumerLedger();
    const now = Date.now();
    ledger.apply({ op: 'start', sub: 'g\u0000t\u00000', queue: 0, offset: 0 });
    ledger.apply({
      op: 'deliver',
      sub: 'g\u0000t\u00000',
      queue: 0,
      d: [
        [0, 17, now, now - 10, now - 10],
        [1, 1, now, now - 5, now - 5],
      ],
      pull: 2,
      from: 0,
    });
    const cursor = ledger.find('g', 't', 0)!.cursors.get(0)!;
    cursor.hold(0); // what deadLetter() does while the copy is appended
    const json = JSON.stringify(ledger.snapshot()); // what Broker.snapshotSoon writes
    const restored = new ConsumerLedger();
    restored.restore(JSON.parse(json));
    const c = restored.find('g', 't', 0)!.cursors.get(0)!;
    t.comment(
      `restored redeliverAtMs of the held offset: ${String(c.inflight.get(0)!.redeliverAtMs)}`,
    );
    t.ok(c.earliestDueMs() <= Date.now(), 'offset 1 is due for redelivery');
    t.same(c.takeDue(Date.now(), 10).length > 0, true, 'something is due');
  },
);

t.test(
  'a dedupId of a deleted topic does not make a publish to its successor a duplicate',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(topic, [text('first', { dedupId: 'pay-1' })]);
    await broker.dropTopic(topic);
    const successor = { ...topic, createdAt: topic.createdAt + 1 };
    const [again] = await broker.publish(successor, [text('second', { dedupId: 'pay-1' })]);
    t.notOk(again.duplicate, 'nothing with this dedupId is stored on the (new) topic');
    const got = await broker.receive(successor, group, {
      maxMessages: 32,
      waitMs: 200,
      tags: '*',
    });
    t.same(
      got.map((m) => m.body.toString()),
      ['second'],
    );
    await t.resolves(broker.getMessage(successor, again.messageId), 'the answered id resolves');
  },
);

t.test('keys and property names with the reserved prefix are refused', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1 });
  // a key like the one a dedupId is indexed under would make a later real publish a "duplicate"
  await t.rejects(broker.publish(topic, [text('attacker', { keys: ['\u0001dedup:pay-9'] })]), {
    code: 'InvalidArgument',
  });
  // a property like a copy's original id would spoof the message id users see
  await t.rejects(
    broker.publish(topic, [text('spoof', { properties: { '\u0001mid': 'ABCDEF' } })]),
    {
      code: 'InvalidArgument',
    },
  );
  const [victim] = await broker.publish(topic, [text('victim', { dedupId: 'pay-9' })]);
  t.notOk(victim?.duplicate, 'a payment never published before is stored');
});

t.test('a tag filter reads on past long runs of other tags within one long poll', async (t) => {
  const broker = await brokerHarness(t).open({ store: { segmentBytes: 64 * 1024 * 1024 } });
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  for (let i = 0; i < 5000; i += 32)
    await broker.publish(
      topic,
      Array.from({ length: Math.min(32, 5000 - i) }, () => text('b', { tag: 'B' })),
    );
  await broker.publish(topic, [text('a', { tag: 'A' })]);
  const start = Date.now();
  const got = await broker.receive(topic, group, { maxMessages: 1, waitMs: 2000, tags: 'A' });
  t.comment(`answered after ${Date.now() - start} ms with ${got.length} messages`);
  t.equal(got.length, 1, 'the stored A message is received by a 2 s long poll');
});

t.test('a FIFO long poll sleeps while a later message is due but the head is not', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1, messageType: 'FIFO' });
  const group = groupOf();
  await broker.publish(topic, [text('m0', { shardingKey: 'k' }), text('m1', { shardingKey: 'k' })]);
  const got = await broker.receive(topic, group, {
    maxMessages: 2,
    waitMs: 0,
    tags: '*',
    invisibleMs: 60_000,
  });
  t.equal(got.length, 2);
  await broker.changeVisibility(topic, group, got[1].receiptHandle, 0); // release m1 now, m0 stays invisible
  let parks = 0;
  const park = broker.longPoll.park.bind(broker.longPoll);
  broker.longPoll.park = (...args: Parameters<typeof park>) => {
    parks++;
    return park(...args);
  };
  const started = process.cpuUsage();
  const res = await broker.receive(topic, group, { maxMessages: 2, waitMs: 1000, tags: '*' });
  const cpu = process.cpuUsage(started);
  t.equal(res.length, 0, 'nothing may be handed out (m0 is in flight)');
  t.comment(`parks in a 1 s long poll: ${parks}, cpu ${(cpu.user + cpu.system) / 1000} ms`);
  t.ok(parks < 5, 'the long poll sleeps instead of spinning');
});

t.test('after a restart the sweep dead-letters before anyone calls again', async (t) => {
  const harness = brokerHarness(t);
  let broker = await harness.open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1, retryPolicy: { backoffSeconds: [0] } });
  await broker.publish(topic, [text('x')]);
  await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*', invisibleMs: 300 });
  await broker.close();
  broker = await harness.open();
  const reopened = broker;
  await waitFor(
    'the sweep to dead-letter',
    async () => (await reopened.deadLetters(group, 10)).messages.length > 0,
  );
  t.equal(
    (await broker.deadLetters(group, 10)).messages.length,
    1,
    'the background sweep moved it to the DLQ',
  );
  t.equal((await broker.groupStats(topic, group)).deadLetters, 1);
});

t.test('taking 20000 due offsets is linear', async (t) => {
  // Work is counted, not timed (a duration assert failed on a loaded machine): the in-flight
  // entries a sweep pass looks at, at n and at 2n due offsets. A scan per offset would be n².
  const sweepPass = (n: number): number => {
    const cursor = new QueueCursor(0);
    const now = 1_000_000;
    cursor.deliver(
      Array.from({ length: n }, (_, i) => ({
        queueOffset: i,
        attempt: 1,
        firstDeliveryMs: now,
        nextVisibleMs: now - 1,
        redeliverAtMs: now - 1,
      })),
      n,
    );
    const touches = countTouches(cursor.inflight);
    const due = cursor.takeDue(now, Number.MAX_SAFE_INTEGER); // what Receiver.sweep does
    for (const offset of due) {
      const e = cursor.inflight.get(offset)!;
      cursor.changeVisibility(offset, e.nextVisibleMs, e.redeliverAtMs);
    }
    t.equal(due.length, n, `all ${n} offsets are due`);
    return touches();
  };
  const n = 20_000;
  const once = sweepPass(n);
  const twice = sweepPass(2 * n);
  t.comment(`in-flight entries touched by one sweep pass: ${once} for ${n}, ${twice} for ${2 * n}`);
  t.ok(once <= 4 * n, 'a bounded number of looks per due offset');
  t.ok(twice <= 2 * once + 2, 'twice the offsets, at most twice the work');
});

t.test(
  'a crash during a dead-letter move: the move is retried and the queue keeps redelivering',
  async (t) => {
    const harness = brokerHarness(t);
    const b1 = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ maxDeliveryAttempts: 2, retryPolicy: { backoffSeconds: [0] } });
    await b1.publish(topic, [text('A'), text('B')]);
    const r = (maxMessages: number, invisibleMs: number) =>
      b1.receive(topic, group, { maxMessages, waitMs: 1000, tags: '*', invisibleMs });
    const [a1] = await r(1, 100);
    t.equal(a1.body.toString(), 'A');
    await waitUntilPast(a1.nextVisibleTime);
    const [a2] = await r(1, 100);
    t.equal(a2.deliveryAttempt, 2);
    const [b] = await r(1, 1000);
    t.equal(b.body.toString(), 'B');
    let release: ((e: Error) => void) | undefined;
    const store = b1.store as unknown as { append: (m: { topic: string }[]) => Promise<unknown> };
    const orig = store.append.bind(store);
    store.append = (m) =>
      m[0].topic.includes('%DLQ%') ? new Promise((_, rej) => (release = rej)) : orig(m);
    // A is due, out of attempts: the sweep holds it while its DLQ copy is appended
    const releaseMove = await waitFor('the DLQ copy of A to be appended', () => release);
    const { journal } = (b1 as unknown as { core: BrokerCore }).core;
    journal.snapshotSoon();
    await journal.settled();
    const b2 = await crashCopy(t, harness.dir);
    releaseMove(new WharfError('IoError', 'test over'));
    await waitUntilPast(b.nextVisibleTime); // B's invisibility is over
    const back = await b2.receive(topic, group, {
      maxMessages: 2,
      waitMs: 1500,
      tags: '*',
      invisibleMs: 1000,
    });
    t.same(
      back.map((m) => `${m.body.toString()}#${m.deliveryAttempt}`),
      ['B#2'],
      'B comes back after the restart',
    );
    await waitFor(
      'A to reach the DLQ',
      async () => (await b2.deadLetters(group, 10)).messages.length > 0,
    );
    t.equal(
      (await b2.deadLetters(group, 10)).messages.length,
      1,
      'A reaches the DLQ after the restart',
    );
  },
);

t.test('a reset landing during a dead-letter move replays the moved message too', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1, retryPolicy: { backoffSeconds: [0] } });
  await broker.publish(topic, [text('A')]);
  const [a] = await broker.receive(topic, group, {
    maxMessages: 1,
    waitMs: 0,
    tags: '*',
    invisibleMs: 50,
  });
  let release: (() => void) | undefined;
  const store = broker.store as unknown as {
    append: (m: { topic: string }[]) => Promise<unknown>;
  };
  const orig = store.append.bind(store);
  store.append = (m) =>
    m[0].topic.includes('%DLQ%')
      ? new Promise<void>((resolve) => (release = resolve)).then(() => orig(m))
      : orig(m);
  // A is due, out of attempts: the sweep holds it while its DLQ copy is appended
  const releaseMove = await waitFor('the DLQ copy of A to be appended', () => release);
  await broker.resetGroup(topic, group, 'earliest');
  releaseMove();
  await waitFor(
    'A to reach the DLQ',
    async () => (await broker.deadLetters(group, 10)).messages.length > 0,
  );
  await (broker as unknown as { core: BrokerCore }).core.settleTasks();
  const back = await broker.receive(topic, group, { maxMessages: 1, waitMs: 1000, tags: '*' });
  t.same(
    back.map((m) => m.messageId),
    [a.messageId],
    'the reset delivers A again',
  );
});

t.test(
  'a refused delivery entry of the journal does not make replay skip its messages',
  async (t) => {
    const harness = brokerHarness(t);
    const b1 = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
    await b1.publish(
      topic,
      Array.from({ length: 10 }, (_, i) => text(`m${i}`)),
    );
    let armed = true;
    journalAppends(b1).intercept((entries, append) => {
      if (armed && holdsOp(entries, /deliver/)) {
        armed = false;
        return Promise.reject(
          new WharfError('AppendQueueFull', 'journal: too many appends pending'),
        );
      }
      return append(entries);
    });
    const first = await b1.receive(topic, group, {
      maxMessages: 5,
      waitMs: 0,
      tags: '*',
      invisibleMs: 100,
    });
    const second = await b1.receive(topic, group, {
      maxMessages: 5,
      waitMs: 0,
      tags: '*',
      invisibleMs: 100,
    });
    t.equal(first.length + second.length, 10);
    await b1.ack(
      topic,
      group,
      second.map((m) => m.receiptHandle),
    ); // the consumer of `first` died
    const b2 = await crashCopy(t, harness.dir);
    await waitUntilPast(Math.max(...first.map((m) => m.nextVisibleTime)));
    const back = await b2.receive(topic, group, { maxMessages: 32, waitMs: 500, tags: '*' });
    t.same(
      back.map((m) => m.body.toString()).sort(),
      ['m0', 'm1', 'm2', 'm3', 'm4'],
      'the unacked messages come back after the crash',
    );
  },
);
t.test('one published message wakes one parked receive of the group', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 8 });
  const group = groupOf();
  const store = broker.store as unknown as { readQueue: (...a: unknown[]) => Promise<unknown> };
  const orig = store.readQueue.bind(store);
  let reads = 0;
  store.readQueue = (...a: unknown[]) => {
    reads++;
    return orig(...a);
  };
  let parks = 0;
  const park = broker.longPoll.park.bind(broker.longPoll);
  broker.longPoll.park = (...args: Parameters<typeof park>) => {
    parks++;
    return park(...args);
  };
  let delivered = 0;
  const receives = Array.from({ length: 500 }, () =>
    broker.receive(topic, group, { maxMessages: 1, waitMs: 1500, tags: '*' }).then((got) => {
      delivered += got.length;
      return got;
    }),
  );
  await waitFor('every receive to park', () => parks >= receives.length);
  const before = { parks, reads };
  const t0 = performance.now();
  await broker.publish(topic, [text('x')]);
  await waitFor('the message to be delivered', () => delivered > 0);
  // counted when the message is out: later re-parks are waits running out (a timer may fire a
  // millisecond before the wall-clock deadline), not waiters the publish woke
  const woken = parks - before.parks;
  t.comment(
    `1 message, 500 parked receives of one group: ${woken} re-parks, ${reads - before.reads} store reads, ${(performance.now() - t0).toFixed(0)} ms`,
  );
  const got = (await Promise.all(receives)).flat();
  t.equal(got.length, 1);
  t.ok(woken < 10, 'one waiter of the group is woken, not all of them');
});

t.test('two concurrent resends of one dead letter deliver it once', async (t) => {
  const broker = await brokerHarness(t).open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1, retryPolicy: { backoffSeconds: [0] } });
  const [published] = await broker.publish(topic, [text('x')]);
  await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*', invisibleMs: 50 });
  const dead = await waitFor('the message to be dead-lettered', async () => {
    const page = await broker.deadLetters(group, 10);
    return page.messages.length > 0 && page;
  });
  t.equal(dead.messages.length, 1);
  const id = published.messageId;
  const [a, b] = await Promise.all([
    broker.resendDeadLetters(group, [id]),
    broker.resendDeadLetters(group, [id]),
  ]);
  t.same([a[0]?.ok, b[0]?.ok].sort(), [false, true], 'one resend wins');
  const back = await broker.receive(topic, group, { maxMessages: 10, waitMs: 500, tags: '*' });
  t.equal(back.length, 1, 'delivered again once');
});

for (const snapshotAfterBytes of [undefined, 1]) {
  t.test(
    `after a reset, a handle of a delivery before it does not ack the replayed one, across a restart too (${snapshotAfterBytes === undefined ? 'journal' : 'snapshots'})`,
    async (t) => {
      const harness = brokerHarness(t);
      const options = snapshotAfterBytes === undefined ? {} : { snapshotAfterBytes };
      let broker = await harness.open(options);
      const topic = topicOf({ queueCount: 1 });
      const group = groupOf();
      await broker.publish(topic, [text('m')]);
      const receive = { maxMessages: 1, waitMs: 0, tags: '*' };
      const [before] = await broker.receive(topic, group, receive);
      await broker.resetGroup(topic, group, 'earliest');
      const [replayed] = await broker.receive(topic, group, receive);
      t.equal(replayed.messageId, before.messageId, 'the reset replays m');
      t.equal(replayed.deliveryAttempt, 1, 'as a first delivery');
      t.match(
        await broker.ack(topic, group, [before.receiptHandle]),
        [{ ok: false, code: 'ReceiptHandleExpired' }],
        'the handle of the delivery the reset discarded is stale',
      );
      await t.rejects(broker.changeVisibility(topic, group, before.receiptHandle, 0), {
        code: 'ReceiptHandleExpired',
      });
      await broker.close();
      broker = await harness.open(options);
      t.match(
        await broker.ack(topic, group, [before.receiptHandle]),
        [{ ok: false, code: 'ReceiptHandleExpired' }],
        'still stale after a restart',
      );
      t.match(
        await broker.ack(topic, group, [replayed.receiptHandle]),
        [{ ok: true }],
        'the replayed delivery’s own handle acks it',
      );
    },
  );
}
