// A topic's createdAt comes from the clock of the gateway that created it, a message's store
// time from the broker's. A gateway whose clock runs ahead of the broker's (3 s here, as an
// unsynchronised host may) must not make the broker take the topic's own messages for those of
// an earlier topic under its name: that made commits answer 404 TransactionNotFound (the half
// then rolled back: the producer's commit lost), and delayed messages, queries and dedupIds
// unreachable. A topic deleted and created again is told apart by the log position of its
// deletion instead, whatever the clocks say. And a wait (a receive's, a check's) is measured on
// the monotonic clock, so a wall clock stepped back does not stretch it.
import { Redis } from 'ioredis';
import t from 'tap';
import { MetaKeys, RedisScheduleWheel } from '../../src/meta/index.js';
import { brokerHarness, groupOf, text, topicOf } from '../helpers/broker.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

const AHEAD_MS = 3_000;

/** Date.now, stepped back as NTP would step it, and restored at the end of the test. */
function wallClock(t: Parameters<typeof brokerHarness>[0]) {
  const realNow = Date.now.bind(Date);
  const restore = () => {
    Date.now = realNow;
  };
  t.teardown(restore);
  return {
    stepBack: (ms: number) => {
      Date.now = () => realNow() - ms;
    },
    restore,
  };
}

async function openBroker(t: Parameters<typeof brokerHarness>[0]) {
  const server = await startTestRedis(t);
  const redis = new Redis(server.url, { maxRetriesPerRequest: 0 });
  t.teardown(() => redis.quit());
  const broker = await brokerHarness(t).open({
    scheduleWheel: new RedisScheduleWheel(redis, new MetaKeys('test'), '0'),
  });
  await waitFor('the wheel ready', () => broker.scheduler!.isReady());
  return broker;
}

t.test('a topic created on a gateway whose clock runs ahead is whole', async (t) => {
  const broker = await openBroker(t);
  const createdAt = Date.now() + AHEAD_MS;

  const txn = topicOf({ messageType: 'TRANSACTION', queueCount: 1, createdAt });
  const [half] = await broker.publish(txn, [text('pay')]);
  await broker.commitTransaction(txn, half.transactionId!);
  t.pass('the commit is taken');
  const view = await broker.getMessage(txn, half.messageId);
  t.equal(view.messageId, half.messageId, 'and its message found by id');

  const delay = topicOf({ messageType: 'DELAY', queueCount: 1, createdAt });
  const [later] = await broker.publish(delay, [
    text('later', { deliverAtMs: Date.now() + 3_600_000 }),
  ]);
  t.match(await broker.getMessage(delay, later.messageId), { scheduleState: 'SCHEDULED' });
  await broker.cancelMessage(delay, later.messageId);
  t.match(await broker.getMessage(delay, later.messageId), { scheduleState: 'CANCELLED' });

  const normal = topicOf({ queueCount: 1, createdAt });
  const [first] = await broker.publish(normal, [text('once', { dedupId: 'd-1' })]);
  const [again] = await broker.publish(normal, [text('once', { dedupId: 'd-1' })]);
  t.equal(again.messageId, first.messageId, 'a repeated dedupId is answered as a duplicate');
  t.equal((await broker.getMessage(normal, first.messageId)).messageId, first.messageId);
  t.equal((await broker.queryByKey(normal, 'k', 10)).length, 0);
});

t.test('a topic created again does not see the old one, whatever the clocks', async (t) => {
  const broker = await openBroker(t);
  // the second gateway's clock runs behind: the new topic's createdAt is before the old messages
  const createdAt = Date.now() - AHEAD_MS;
  const name = topicOf({ messageType: 'TRANSACTION', queueCount: 1, createdAt }).topic;
  const old = { ...topicOf({ messageType: 'TRANSACTION', queueCount: 1 }), topic: name };
  const [half] = await broker.publish(old, [text('old')]);
  await broker.dropTopic(old);
  const renewed = { ...old, createdAt };
  await t.rejects(broker.commitTransaction(renewed, half.transactionId!), {
    code: 'TransactionNotFound',
  });
  await t.rejects(broker.getMessage(renewed, half.messageId), { code: 'MessageNotFound' });

  const delayName = topicOf().topic;
  const oldDelay = { ...topicOf({ messageType: 'DELAY', queueCount: 1 }), topic: delayName };
  const [scheduled] = await broker.publish(oldDelay, [
    text('old', { deliverAtMs: Date.now() + 3_600_000, dedupId: 'd-2' }),
  ]);
  await broker.dropTopic(oldDelay);
  const renewedDelay = { ...oldDelay, createdAt };
  await t.rejects(broker.getMessage(renewedDelay, scheduled.messageId), {
    code: 'MessageNotFound',
  });
  await t.rejects(broker.cancelMessage(renewedDelay, scheduled.messageId), {
    code: 'MessageNotFound',
  });
  const [fresh] = await broker.publish(renewedDelay, [
    text('new', { deliverAtMs: Date.now() + 3_600_000, dedupId: 'd-2' }),
  ]);
  t.not(fresh.messageId, scheduled.messageId, "the old topic's dedupId is not the new one's");

  const normalName = topicOf().topic;
  const oldNormal = { ...topicOf({ queueCount: 1 }), topic: normalName };
  const [stored] = await broker.publish(oldNormal, [text('old')]);
  await broker.dropTopic(oldNormal);
  await t.rejects(broker.getMessage({ ...oldNormal, createdAt }, stored.messageId), {
    code: 'MessageNotFound',
  });
  t.same(
    await broker.receive({ ...oldNormal, createdAt }, groupOf(), {
      maxMessages: 32,
      waitMs: 0,
      tags: '*',
    }),
    [],
  );
});

t.test('a wall clock stepped back does not stretch a waiting receive or check', async (t) => {
  const broker = await brokerHarness(t).open();
  const clock = wallClock(t);
  const topic = topicOf({ queueCount: 1 });
  const txn = topicOf({ messageType: 'TRANSACTION', queueCount: 1 });
  const waits = [
    broker.receive(topic, groupOf(), { maxMessages: 1, waitMs: 300, tags: '*' }),
    broker.checkTransactions(txn, { maxMessages: 1, waitMs: 300 }),
  ];
  await new Promise((resolve) => setTimeout(resolve, 50));
  clock.stepBack(600_000); // NTP stepped the clock back 10 minutes
  // before, each waited out its wait plus the ten minutes (a gateway answered 503 at 20 s)
  const ended = await Promise.race([
    Promise.all(waits).then(() => 'ended'),
    new Promise((resolve) => setTimeout(resolve, 10_000, 'still waiting')).then(String),
  ]);
  t.equal(ended, 'ended', 'both answered (empty) at the end of their wait');
});

t.test('a wall clock stepped back keeps a message trace whole', async (t) => {
  const broker = await brokerHarness(t).open();
  const clock = wallClock(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const [sent] = await broker.publish(topic, [text('traced')]);
  clock.stepBack(600_000); // NTP stepped the clock back 10 minutes
  const [got] = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
  t.equal(got.messageId, sent.messageId);
  t.ok((await broker.ack(topic, group, [got.receiptHandle]))[0].ok);
  // its events are timed before its store time (the store's never goes back): once dropped as
  // an earlier topic's under the same name
  const types = (await broker.trace(topic, sent.messageId)).map((e) => e.type);
  t.same(types, ['PUBLISHED', 'DELIVERED', 'ACKED']);
});

t.test(
  'a wall clock stepped back between a delivery and its ack keeps the trace in order',
  async (t) => {
    const broker = await brokerHarness(t).open();
    const clock = wallClock(t);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    const [sent] = await broker.publish(topic, [text('traced')]);
    const [got] = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    clock.stepBack(600_000); // NTP stepped the clock back 10 minutes
    t.ok((await broker.ack(topic, group, [got.receiptHandle]))[0].ok);
    // ACKED is timed ten minutes before DELIVERED: listed first when sorted by time
    const types = (await broker.trace(topic, sent.messageId)).map((e) => e.type);
    t.same(types, ['PUBLISHED', 'DELIVERED', 'ACKED'], 'in the order they happened');

    // a half message: its decision, then its committed copy's delivery after the step
    clock.restore();
    const txn = topicOf({ messageType: 'TRANSACTION', queueCount: 1 });
    const [half] = await broker.publish(txn, [text('pay')]);
    await broker.commitTransaction(txn, half.transactionId as string);
    clock.stepBack(600_000);
    const [copy] = await broker.receive(txn, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    t.equal(copy.messageId, half.messageId);
    const halfTypes = (await broker.trace(txn, half.messageId)).map((e) => e.type);
    t.same(halfTypes, ['PUBLISHED', 'COMMITTED', 'DELIVERED'], 'the commit before the delivery');
  },
);
