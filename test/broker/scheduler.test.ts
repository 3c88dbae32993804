// Delayed dispatch against a real Redis wheel: a record handed out more than once is dispatched
// once even when its first dispatch fails, and a record dispatched just before a restart is not
// dispatched again after it, even behind a wall clock that went back across the restart.
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { WharfError } from '../../src/errors.js';
import { MetaKeys, RedisScheduleWheel } from '../../src/meta/index.js';
import type { ClaimResult } from '../../src/model/index.js';
import type { Broker } from '../../src/broker/index.js';
import type { GroupDescriptor, TopicDescriptor } from '../../src/model/index.js';
import { storeTopic } from '../../src/broker/names.js';
import { MARK_QUEUE_ID, scheduleTopic } from '../../src/broker/schedule-records.js';
import { brokerHarness, groupOf, text, topicOf } from '../helpers/broker.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

/** Hands the first claimed entry out `copies` times in that claim, as overlapping claims (a
 *  lease run out, a release after a timed-out claim) hand one record out more than once; counts
 *  the claims asked of it and the mark checks. */
class HandingOutTwice extends RedisScheduleWheel {
  copies = 1;
  claims = 0;
  marks = 0;

  override async mark() {
    this.marks++;
    return super.mark();
  }

  override async claimDue(
    wheelId: string,
    nowMs: number,
    dueUntilMs: number,
    max: number,
    leaseMs: number,
  ): Promise<ClaimResult> {
    this.claims++;
    const answer = await super.claimDue(wheelId, nowMs, dueUntilMs, max, leaseMs);
    if (answer.status !== 'ok' || answer.claim === null || this.copies === 1) return answer;
    const entries = Array.from({ length: this.copies }, () => answer.claim.entries[0]);
    this.copies = 1;
    return { status: 'ok', claim: { ...answer.claim, entries } };
  }
}

async function wheelOf(t: Test): Promise<HandingOutTwice> {
  const server = await startTestRedis(t);
  const redis = new Redis(server.url, { maxRetriesPerRequest: 0 });
  t.teardown(() => redis.quit());
  return new HandingOutTwice(redis, new MetaKeys('test'), '0');
}

/** Every message the group can receive now, acked. */
async function drain(broker: Broker, topic: TopicDescriptor, group: GroupDescriptor) {
  const got: string[] = [];
  for (;;) {
    const messages = await broker.receive(topic, group, { maxMessages: 32, waitMs: 0, tags: '*' });
    if (messages.length === 0) return got;
    got.push(...messages.map((m) => m.body.toString()));
    await broker.ack(
      topic,
      group,
      messages.map((m) => m.receiptHandle),
    );
  }
}

/** Receives until `body` has come, returning everything received on the way. */
async function receiveUntil(
  broker: Broker,
  topic: TopicDescriptor,
  group: GroupDescriptor,
  body: string,
): Promise<string[]> {
  const got: string[] = [];
  await waitFor(`"${body}" delivered`, async () => {
    got.push(...(await drain(broker, topic, group)));
    return got.includes(body);
  });
  return got;
}

t.test(
  'a record held three times whose first dispatch fails is delivered once, not twice',
  async (t) => {
    const wheel = await wheelOf(t);
    const broker = await brokerHarness(t).open({ scheduleWheel: wheel });
    await waitFor('the wheel ready', () => broker.scheduler!.isReady());
    const topic = topicOf({ messageType: 'DELAY', queueCount: 1 });
    const group = groupOf();
    // three holds in three dispatch batches (a batch takes 1,000 of what is due), all at once
    wheel.copies = 3_000;
    const store = broker.store as unknown as {
      append: (m: { topic: string }[]) => Promise<unknown>;
    };
    const append = store.append.bind(store);
    let failed = false;
    store.append = (messages) => {
      if (!failed && messages[0].topic === storeTopic(topic)) {
        failed = true; // the first hold's copy is refused (a full disk, an I/O error)
        return Promise.reject(new WharfError('IoError', 'test: the copy is refused'));
      }
      return append(messages);
    };
    await broker.publish(topic, [text('once', { deliverAtMs: Date.now() + 100 })]);
    const first = await receiveUntil(broker, topic, group, 'once');
    t.ok(failed, 'the first dispatch failed');
    // the dispatches of one release end before the next release: a later message's delivery
    // means every hold of the first one was dispatched or skipped
    await broker.publish(topic, [text('after', { deliverAtMs: Date.now() + 100 })]);
    const rest = await receiveUntil(broker, topic, group, 'after');
    t.same([...first, ...rest], ['once', 'after'], 'the delayed message is delivered once');
  },
);

t.test(
  'a dispatch just before a restart is not repeated behind a clock that went back',
  async (t) => {
    const wheel = await wheelOf(t);
    const harness = brokerHarness(t);
    const first = await harness.open({ scheduleWheel: wheel });
    await waitFor('the wheel ready', () => first.scheduler!.isReady());
    const topic = topicOf({ messageType: 'DELAY', queueCount: 1 });
    const group = groupOf();
    // the done marks are never stored: the broker stops between its copy and the mark
    const marks = scheduleTopic(topic.tenantId, topic.instanceId);
    const store = first.store as unknown as {
      append: (m: { topic: string; queueId: number }[]) => Promise<unknown>;
    };
    const append = store.append.bind(store);
    store.append = (messages) =>
      messages[0].topic === marks && messages[0].queueId === MARK_QUEUE_ID
        ? Promise.reject(new WharfError('IoError', 'test: the mark is lost'))
        : append(messages);
    const deliverAtMs = Date.now() + 100;
    await first.publish(topic, [text('once', { deliverAtMs })]);
    t.same(await receiveUntil(first, topic, group, 'once'), ['once']);
    await first.close();
    // the wall clock is set back 3 s across the restart: the message is due again by it
    const realNow = Date.now.bind(Date);
    Date.now = () => realNow() - 3_000;
    t.teardown(() => {
      Date.now = realNow;
    });
    t.ok(Date.now() < deliverAtMs, 'the clock reads before the due time again');
    const second = await harness.open({ scheduleWheel: wheel });
    await waitFor('the wheel ready', () => second.scheduler!.isReady());
    // due after the first by the set-back clock: its delivery means the first's time has passed
    await second.publish(topic, [text('after', { deliverAtMs: deliverAtMs + 1 })]);
    t.same(
      await receiveUntil(second, topic, group, 'after'),
      ['after'],
      'the delayed message is not delivered again',
    );
  },
);

t.test(
  'an idle ticker stops asking the wheel until something is fed to it, then claims at once',
  async (t) => {
    const wheel = await wheelOf(t);
    // a tick every ms and a mark check every 20 ms; once idle, no claim for a minute unless fed
    const broker = await brokerHarness(t).open({
      scheduleWheel: wheel,
      scheduler: { tickMs: 1, checkIntervalMs: 20, maxQuietMs: 60_000 },
    });
    await waitFor('the wheel ready', () => broker.scheduler!.isReady());
    await waitFor('a first claim', () => wheel.claims > 0);
    const claims = wheel.claims;
    const marks = wheel.marks;
    // ten mark checks: about 200 ticks of 1 ms, each of which used to ask Redis
    await waitFor('ten more mark checks', () => wheel.marks >= marks + 10);
    t.equal(wheel.claims, claims, 'no claim while the wheel has nothing due');
    // a delayed message fed to the wheel ends the quiet: delivered, not a minute later
    const topic = topicOf({ messageType: 'DELAY', queueCount: 1 });
    const group = groupOf();
    await broker.publish(topic, [text('soon', { deliverAtMs: Date.now() + 100 })]);
    t.same(await receiveUntil(broker, topic, group, 'soon'), ['soon']);
    t.ok(wheel.claims > claims, 'claimed after the feed');
  },
);
