// Dead-letter re-sends on a real store: a re-send cut by a crash between its copies and their
// journal entry is finished at start, and a second re-send after the crash copies nothing again;
// the record of re-sent dead letters forgets those retention deleted.
import t from 'tap';
import type { Broker } from '../../src/broker/index.js';
import { DeadLetters } from '../../src/broker/dead-letters.js';
import { groupKey } from '../../src/broker/names.js';
import { WharfError } from '../../src/errors.js';
import type { GroupDescriptor, TopicDescriptor } from '../../src/model/index.js';
import {
  brokerHarness,
  crashCopy,
  groupOf,
  holdsOp,
  journalAppends,
  lostTailCrash,
  text,
  topicOf,
} from '../helpers/broker.js';
import { waitFor, waitUntilPast } from '../helpers/wait-for.js';

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

/** Publishes `bodies` and lets each use its one delivery attempt: they end in the group's
 *  dead-letter queue. Returns their message ids as the dead-letter list shows them. */
async function deadLetter(
  broker: Broker,
  topic: TopicDescriptor,
  group: GroupDescriptor,
  bodies: string[],
): Promise<string[]> {
  const before = (await broker.deadLetters(group, 1000)).messages.length;
  await broker.publish(
    topic,
    bodies.map((body) => text(body)),
  );
  const received = await broker.receive(topic, group, {
    maxMessages: 32,
    waitMs: 0,
    tags: '*',
    invisibleMs: 100,
  });
  await waitUntilPast(Math.max(...received.map((m) => m.nextVisibleTime)));
  const { messages } = await waitFor('the messages dead-lettered', async () => {
    const page = await broker.deadLetters(group, 1000);
    return page.messages.length === before + bodies.length && page;
  });
  return messages.slice(before).map((m) => m.messageId);
}

/** Re-sends a dead letter whose copy is made but whose journal write marking it done never
 *  finishes (a broker that dies there); `stopped` fails that write once the test has its crash. */
async function resendStalledAtDone(broker: Broker, group: GroupDescriptor, messageId: string) {
  let stop: ((error: Error) => void) | undefined;
  journalAppends(broker).intercept((entries, append) =>
    holdsOp(entries, /dlqDone/) ? new Promise((_, reject) => (stop = reject)) : append(entries),
  );
  const resend = broker.resendDeadLetters(group, [messageId]);
  const stopped = await waitFor('the copy made and its done mark being written', () => stop);
  return { resend, stopped };
}

t.test('a re-send cut by a crash before it was marked done is not delivered twice', async (t) => {
  const harness = brokerHarness(t);
  const first = await harness.open();
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1 });
  const [messageId] = await deadLetter(first, topic, group, ['A']);
  // the copy is made; the journal write marking the dead letter done never finishes
  const { resend, stopped } = await resendStalledAtDone(first, group, messageId);
  const second = await crashCopy(t, harness.dir);
  stopped(new WharfError('IoError', 'test: the broker is gone'));
  await t.rejects(resend, 'the re-send was never answered');
  t.same((await second.deadLetters(group, 10)).messages, [], 'not listed as a dead letter again');
  // the user sends the unanswered re-send again
  await second.resendDeadLetters(group, [messageId]);
  t.same(await drain(second, topic, group), ['A'], 'delivered to the group once');
});

t.test(
  "a deleted topic's dead letters go with it: not listed, not re-sent into its namesake",
  async (t) => {
    const harness = brokerHarness(t);
    const broker = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const other = topicOf({ queueCount: 1 });
    const group = groupOf({ maxDeliveryAttempts: 1 });
    const [gone] = await deadLetter(broker, topic, group, ['A']);
    const [kept] = await deadLetter(broker, other, group, ['B']);
    await broker.dropTopic(topic);
    const listed = async (b: Broker) =>
      (await b.deadLetters(group, 10)).messages.map((m) => m.messageId);
    t.same(await listed(broker), [kept], "only the other topic's dead letter is listed");
    // the topic created again under the name (a new incarnation) starts empty
    const again = { ...topic, createdAt: topic.createdAt + 1 };
    t.same(await broker.resendDeadLetters(group, [gone]), [
      { messageId: gone, ok: false, code: 'MessageNotFound' },
    ]);
    await broker.publish(again, [text('new')]);
    t.same(await drain(broker, again, group), ['new'], 'only its own message');
    const restarted = await crashCopy(t, harness.dir);
    t.same(await listed(restarted), [kept], 'after a crash too');
  },
);

t.test(
  'a re-send cut short that cannot be finished at start keeps the broker serving',
  async (t) => {
    const harness = brokerHarness(t);
    const first = await harness.open();
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ maxDeliveryAttempts: 1 });
    const [messageId] = await deadLetter(first, topic, group, ['A']);
    const { resend, stopped } = await resendStalledAtDone(first, group, messageId);
    // the restarted broker's disk refuses the first attempt to finish the re-send
    const recover = Object.getOwnPropertyDescriptor(DeadLetters.prototype, 'recover')!;
    let refusals = 0;
    DeadLetters.prototype.recover = function () {
      DeadLetters.prototype.recover = recover.value as DeadLetters['recover'];
      refusals++;
      return Promise.reject(new WharfError('DiskFull', 'test: no space left on the device'));
    };
    t.teardown(() => Object.defineProperty(DeadLetters.prototype, 'recover', recover));
    const second = await crashCopy(t, harness.dir);
    stopped(new WharfError('IoError', 'test: the broker is gone'));
    await t.rejects(resend, 'the re-send was never answered');
    t.equal(refusals, 1, 'finishing the re-send failed once');
    t.same(await second.publish(topic, [text('B')]).then((r) => r.length), 1, 'the broker serves');
    await waitFor('the re-send finished by the sweep', async () => {
      const page = await second.deadLetters(group, 10);
      return page.messages.length === 0;
    });
    t.same((await drain(second, topic, group)).sort(), ['A', 'B'], 'A delivered once');
  },
);

interface Hooks {
  runRetention(nowMs?: number): Promise<number>;
}

t.test(
  'the record of re-sent dead letters forgets those retention deleted, across a restart too',
  async (t) => {
    const harness = brokerHarness(t);
    const store = {
      segmentBytes: 64 * 1024,
      retentionMs: 60_000,
      retentionCheckIntervalMs: 3_600_000,
    };
    const first = await harness.open({ store });
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ maxDeliveryAttempts: 1 });
    const bodies = Array.from({ length: 20 }, (_, i) => `old-${i}`);
    const ids = await deadLetter(first, topic, group, bodies);
    // every other one re-sent: a record of 10 separate runs
    for (const [i, id] of ids.entries())
      if (i % 2 === 0) t.match(await first.resendDeadLetters(group, [id]), [{ ok: true }]);
    t.same((await drain(first, topic, group)).sort(), bodies.filter((_, i) => i % 2 === 0).sort());
    // later traffic fills the segments after theirs; an hour on, retention deletes the old ones
    const filler = topicOf({ queueCount: 1 });
    for (let n = 0; n < 12; n++)
      await first.publish(
        filler,
        Array.from({ length: 16 }, (_, i) => text(`${n}-${i}-${'y'.repeat(1000)}`)),
      );
    t.ok(
      await (first.store as unknown as Hooks).runRetention(Date.now() + 3_600_000),
      'retention deleted the old segments',
    );
    t.same((await first.deadLetters(group, 100)).messages, [], 'the old dead letters are gone');
    const [, resent] = await deadLetter(first, topic, group, ['kept', 'resent']);
    t.match(await first.resendDeadLetters(group, [resent]), [{ ok: true }]);
    await first.close();
    const second = await harness.open({ store });
    t.same(
      (await second.deadLetters(group, 100)).messages.map((m) => m.body.toString()),
      ['kept'],
      'the re-send after retention is remembered across the restart',
    );
    t.same(
      second.ledger.deadLetterDone(groupKey(group)).pairs().length,
      1,
      'the record holds the one re-send left, not the ones retention deleted',
    );
  },
);

t.test(
  'under async flush, a re-sent dead letter lost with the log tail hides no later dead letter',
  async (t) => {
    const harness = brokerHarness(t);
    const options = { store: { flushPolicy: 'async' as const } };
    const first = await harness.open(options);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ maxDeliveryAttempts: 1 });
    await deadLetter(first, topic, group, ['A']);
    const lostTail = lostTailCrash(t, harness.dir);
    // B is dead-lettered at the dead-letter queue's offset 1 and re-sent: offset 1 is done
    const [b] = await deadLetter(first, topic, group, ['B']);
    t.match(await first.resendDeadLetters(group, [b]), [{ ok: true }]);
    // the crash loses the commit log's unsynced tail (B and its dead letter); the journal, synced
    // on its own timer, keeps offset 1 done
    const second = await lostTail.crash({ ...options });
    // C is dead-lettered next, at offset 1 again
    await second.publish(topic, [text('C')]);
    const got = await second.receive(topic, group, {
      maxMessages: 32,
      waitMs: 0,
      tags: '*',
      invisibleMs: 100,
    });
    t.same(
      got.map((m) => m.body.toString()),
      ['C'],
    );
    await waitUntilPast(got[0].nextVisibleTime);
    const listed = await waitFor('C listed as a dead letter', async () => {
      const page = await second.deadLetters(group, 10);
      return page.messages.length === 2 && page;
    });
    t.same(listed.messages.map((m) => m.body.toString()).sort(), ['A', 'C']);
  },
);
