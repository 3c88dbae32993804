// Topic, group and broker statistics over a real broker, and the counters behind them: a group
// that never received counts from its creation, in-flight and acked messages move the figures,
// broadcasting consumers each count their backlog, dropped subscriptions lose their counters.
import t from 'tap';
import { Counters } from '../../src/broker/counters.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  brokerHarness,
  crashCopy,
  groupOf,
  openTestBroker,
  text,
  topicOf,
} from '../helpers/broker.js';
import { waitFor } from '../helpers/wait-for.js';

t.test('topic stats: queues, messages and bytes in, publish rate', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 2 });
  await broker.publish(topic, [text('a'), text('b'), text('c')]);
  const stats = await broker.topicStats(topic);
  t.equal(stats.messagesIn, 3);
  t.equal(stats.queues.length, 2);
  t.same(
    stats.queues.map((q) => q.minOffset),
    [0, 0],
  );
  t.ok(stats.bytesIn > 3, 'record bytes, not only bodies');
  t.ok(stats.publishRatePerSecond >= 0);
});

t.test('group stats follow receives and acks', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await broker.publish(topic, [text('a'), text('b'), text('c')]);
  t.match(await broker.groupStats(topic, group), {
    backlog: 3,
    inflight: 0,
    retries: 0,
    deadLetters: 0,
  });
  t.ok((await broker.groupStats(topic, group)).oldestUnackedAgeMs >= 0);
  const got = await broker.receive(topic, group, { maxMessages: 2, waitMs: 0, tags: '*' });
  t.match(await broker.groupStats(topic, group), { backlog: 3, inflight: 2 });
  await broker.ack(topic, group, [got[0].receiptHandle]);
  const after = await broker.groupStats(topic, group);
  t.match(after, { backlog: 2, inflight: 1 });
  t.match(broker.stats(), { inflight: 1, subscriptions: 1, parkedReceives: 0 });
  t.match(await broker.groupStats(topic, groupOf({ createdAt: Date.now() + 60_000 })), {
    backlog: 0,
    oldestUnackedAgeMs: 0,
  });
});

t.test('broadcasting consumers each count their own backlog', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ deliveryMode: 'BROADCASTING' });
  await broker.publish(topic, [text('a'), text('b')]);
  for (const consumerId of ['c1', 'c2']) {
    const got = await broker.receive(topic, group, {
      maxMessages: 1,
      waitMs: 0,
      tags: '*',
      consumerId,
    });
    await broker.ack(topic, group, [got[0].receiptHandle]);
  }
  t.match(await broker.groupStats(topic, group), { backlog: 2, inflight: 0 });
});

t.test('counters: per topic and subscription, forgotten on drop, bytes in restored', async (t) => {
  const counters = new Counters();
  counters.topic('a').bytesIn = 10;
  counters.topic('b').bytesIn = 20;
  t.equal(counters.topic('a'), counters.topic('a'), 'one counter per topic');
  counters.forgetTopic('b');
  t.same(counters.bytesIn(), [['a', 10]]);
  const restored = new Counters();
  restored.restoreBytesIn(counters.bytesIn());
  t.equal(restored.topic('a').bytesIn, 10);
  counters.subscription('s1').acked.add(3);
  counters.subscription('s2').acked.add(4);
  counters.forgetSubscriptionsExcept((key) => key === 's2');
  t.equal(counters.subscription('s2').acked.total, 4, 'kept');
  t.equal(counters.subscription('s1').acked.total, 0, 'forgotten: starts over');
});

t.test('bytes in survive a crash of a broker that only took publishes', async (t) => {
  const harness = brokerHarness(t);
  const broker = await harness.open({ snapshotIntervalMs: 50 });
  const topic = topicOf({ queueCount: 2 });
  await broker.publish(topic, [text('a'.repeat(500)), text('b'.repeat(500))]);
  const before = (await broker.topicStats(topic)).bytesIn;
  t.ok(before > 1000);
  // no consumer: nothing is journaled, yet the snapshot timer saves the bytes in
  const snapshot = join(harness.dir, 'journal', 'snapshot');
  await waitFor('a snapshot of the bytes in', () => existsSync(snapshot));
  const after = await crashCopy(t, harness.dir);
  t.equal((await after.topicStats(topic)).bytesIn, before, 'bytes in after the crash');
});

t.test(
  'group stats after retention deleted acked and in-flight messages: no negative backlog',
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open({
      store: { segmentBytes: 64 * 1024, retentionMs: 60_000, retentionCheckIntervalMs: 3_600_000 },
    });
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const big = (i: number) => text(`${i}-${'x'.repeat(1000)}`);
    for (let n = 0; n < 8; n++)
      await broker.publish(
        topic,
        Array.from({ length: 16 }, (_, i) => big(n * 16 + i)),
      );
    // two held in flight, every other one acked
    const held = await broker.receive(topic, group, { maxMessages: 2, waitMs: 0, tags: '*' });
    t.equal(held.length, 2);
    for (;;) {
      const got = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
      if (got.length === 0) break;
      await broker.ack(
        topic,
        group,
        got.map((m) => m.receiptHandle),
      );
    }
    t.match(await broker.groupStats(topic, group), { backlog: 2, inflight: 2 });
    // an hour on, retention deletes the segments the held two were in, and later ones
    const store = broker.store as unknown as { runRetention(nowMs?: number): Promise<number> };
    t.ok(await store.runRetention(Date.now() + 3_600_000), 'retention deleted segments');
    const { minOffset } = (await broker.topicStats(topic)).queues[0];
    t.ok(minOffset > 2, `the queue starts at ${minOffset} now`);
    t.match(
      await broker.groupStats(topic, group),
      { backlog: 0, inflight: 0, oldestUnackedAgeMs: 0 },
      'what retention deleted is neither backlog nor in flight',
    );
    await broker.publish(topic, [text('new')]);
    t.match(await broker.groupStats(topic, group), { backlog: 1, inflight: 0 });
  },
);
