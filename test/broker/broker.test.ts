import t, { type Test } from 'tap';
import type { Broker } from '../../src/broker/index.js';
import type { GroupDescriptor, TopicDescriptor } from '../../src/model/index.js';
import { brokerHarness, groupOf, openTestBroker, text, topicOf } from '../helpers/broker.js';
import { waitFor, waitUntilPast } from '../helpers/wait-for.js';

const receiveAll = { maxMessages: 32, waitMs: 0, tags: '*' };

/** The bodies a parked receive answers with, or null when it is still parked once `untilMs`
 *  has passed (its wake never came: without a fix, it would wait out its whole `waitMs`). */
async function bodiesUnlessStillParked(
  parked: Promise<{ body: Buffer; deliveryAttempt: number }[]>,
  untilMs: number,
): Promise<[string, number][] | null> {
  const answer = await Promise.race([parked, waitUntilPast(untilMs).then(() => null)]);
  return answer === null ? null : answer.map((m) => [m.body.toString(), m.deliveryAttempt]);
}

t.test(
  'published messages are received once per group, acked, and not delivered again',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf();
    const group = groupOf();
    const otherGroup = groupOf();
    const published = await broker.publish(topic, [text('a'), text('b'), text('c')]);
    t.equal(published.length, 3);
    t.match(published[0], {
      messageId: /^[0-9A-F]{32}$/,
      bodyMd5: '0cc175b9c0f1b6a831c399e269772661',
    });
    const received = await broker.receive(topic, group, receiveAll);
    t.same(received.map((m) => m.body.toString()).sort(), ['a', 'b', 'c']);
    t.same(new Set(received.map((m) => m.messageId)), new Set(published.map((p) => p.messageId)));
    for (const message of received) t.equal(message.deliveryAttempt, 1);
    t.same(await broker.receive(topic, group, receiveAll), [], 'in flight messages are invisible');
    const other = await broker.receive(topic, otherGroup, receiveAll);
    t.equal(other.length, 3, 'another group gets every message too');
    const acks = await broker.ack(
      topic,
      group,
      received.map((m) => m.receiptHandle),
    );
    t.ok(acks.every((a) => a.ok));
    const again = await broker.ack(topic, group, [received[0].receiptHandle, 'bogus']);
    t.match(again, [
      { ok: false, code: 'ReceiptHandleExpired' },
      { ok: false, code: 'InvalidReceiptHandle' },
    ]);
    const stats = await broker.groupStats(topic, group);
    t.match(stats, { backlog: 0, inflight: 0, deadLetters: 0 });
  },
);

t.test(
  'an unacked message comes back after invisibility plus back-off, then goes to the DLQ',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf();
    const group = groupOf({ maxDeliveryAttempts: 2, retryPolicy: { backoffSeconds: [0] } });
    const [published] = await broker.publish(topic, [text('x')]);
    const request = { maxMessages: 1, waitMs: 3000, tags: '*', invisibleMs: 100 };
    const first = await broker.receive(topic, group, request);
    t.equal(first[0]?.deliveryAttempt, 1);
    const second = await broker.receive(topic, group, request);
    t.equal(second[0]?.deliveryAttempt, 2, 'redelivered with attempt + 1');
    t.equal(second[0]?.messageId, published.messageId);
    const stale = await broker.ack(topic, group, [first[0].receiptHandle]);
    t.match(stale, [{ ok: false, code: 'ReceiptHandleExpired' }], 'the first handle is stale');
    // out of attempts: the sweep moves it to the dead-letter queue
    let dead = await broker.deadLetters(group, 10);
    for (let i = 0; i < 100 && dead.messages.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      dead = await broker.deadLetters(group, 10);
    }
    t.equal(dead.messages.length, 1);
    t.match(dead.messages[0], {
      messageId: published.messageId,
      topic: topic.topic,
      deliveryAttempt: 2,
    });
    t.equal((await broker.groupStats(topic, group)).deadLetters, 1);
    const view = await broker.getMessage(topic, published.messageId);
    t.match(view.groups, [{ group: group.group, state: 'DEAD_LETTERED' }]);
    // resend: delivered to the group again
    // one result per id asked, in order (gateways merge brokers' answers by position): a
    // repeated id is re-sent once
    const id = published.messageId;
    const unknown = 'F'.repeat(32);
    const resent = await broker.resendDeadLetters(group, [id, unknown, id]);
    t.same(resent, [
      { messageId: id, ok: true },
      { messageId: unknown, ok: false, code: 'MessageNotFound' },
      { messageId: id, ok: false, code: 'MessageNotFound' },
    ]);
    const back = await broker.receive(topic, group, { ...request, waitMs: 1000 });
    t.equal(back[0]?.messageId, published.messageId);
    t.equal(back[0]?.body.toString(), 'x');
    t.same(
      (await broker.deadLetters(group, 10)).messages,
      [],
      're-sent dead letters leave the list',
    );
    const stateOf = async () => (await broker.getMessage(topic, id)).groups;
    t.match(await stateOf(), [{ state: 'INFLIGHT', deliveryAttempt: 1 }], 'its re-sent copy');
    t.ok((await broker.ack(topic, group, [back[0].receiptHandle]))[0]?.ok);
    t.match(await stateOf(), [{ state: 'ACKED' }], 'the re-sent copy acked');
  },
);

t.test('dedupId stores a retried publish once and answers with the original id', async (t) => {
  const harness = brokerHarness(t);
  const topic = topicOf();
  let broker = await harness.open();
  const [first] = await broker.publish(topic, [text('pay', { dedupId: 'p-1' })]);
  const both = await broker.publish(topic, [
    text('pay', { dedupId: 'p-1' }),
    text('pay2', { dedupId: 'p-2' }),
    text('pay2', { dedupId: 'p-2' }),
  ]);
  t.equal(both[0]?.messageId, first.messageId);
  t.equal(both[0]?.duplicate, true);
  t.notOk(both[1]?.duplicate);
  t.equal(both[2]?.messageId, both[1]?.messageId, 'a repeat inside one batch is a duplicate too');
  const concurrent = await Promise.all([
    broker.publish(topic, [text('c', { dedupId: 'p-3' })]),
    broker.publish(topic, [text('c', { dedupId: 'p-3' })]),
  ]);
  t.equal(concurrent[0][0]?.messageId, concurrent[1][0]?.messageId);
  await broker.close();
  broker = await harness.open();
  const afterRestart = await broker.publish(topic, [text('pay', { dedupId: 'p-1' })]);
  t.equal(
    afterRestart[0]?.messageId,
    first.messageId,
    'the key index remembers it across a restart',
  );
  t.equal(afterRestart[0]?.duplicate, true);
  const stats = await broker.topicStats(topic);
  t.equal(stats.messagesIn, 3);
});

t.test('tag filters deliver matching messages and skip the others for the group', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await broker.publish(topic, [
    text('1', { tag: 'A' }),
    text('2', { tag: 'B' }),
    text('3', { tag: 'C' }),
    text('4'),
  ]);
  const got = await broker.receive(topic, group, { ...receiveAll, tags: 'A||C' });
  t.same(
    got.map((m) => m.tag),
    ['A', 'C'],
  );
  await broker.ack(
    topic,
    group,
    got.map((m) => m.receiptHandle),
  );
  t.equal(
    (await broker.groupStats(topic, group)).backlog,
    0,
    'filtered messages count as consumed',
  );
});

t.test(
  'FIFO: a queue hands out its next message only after the earlier one is acked',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ messageType: 'FIFO', queueCount: 2 });
    const group = groupOf();
    await broker.publish(
      topic,
      ['1', '2', '3'].map((b) => text(b, { shardingKey: 'order-1' })),
    );
    const first = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    t.same(
      first.map((m) => m.body.toString()),
      ['1'],
    );
    t.same(
      await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' }),
      [],
      'blocked until acked',
    );
    await broker.ack(topic, group, [first[0].receiptHandle]);
    const rest = await broker.receive(topic, group, receiveAll);
    t.same(
      rest.map((m) => m.body.toString()),
      ['2', '3'],
    );
    t.equal(rest[0]?.shardingKey, 'order-1');
  },
);

t.test(
  'BROADCASTING: every consumer id gets every message; handles are per consumer',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf();
    const group = groupOf({ deliveryMode: 'BROADCASTING' });
    await broker.publish(topic, [text('x'), text('y')]);
    await t.rejects(broker.receive(topic, group, receiveAll), { code: 'InvalidArgument' });
    const a = await broker.receive(topic, group, { ...receiveAll, consumerId: 'a' });
    const b = await broker.receive(topic, group, { ...receiveAll, consumerId: 'b' });
    t.equal(a.length, 2);
    t.equal(b.length, 2);
    const acks = await broker.ack(topic, group, [a[0].receiptHandle, b[0].receiptHandle]);
    t.ok(acks.every((r) => r.ok));
    // the trace says which consumer acked, as it says which one each delivery went to
    const x = a[0];
    const events = await broker.trace(topic, x.messageId);
    const ackedByB = b[0].messageId === x.messageId ? ['ACKED b'] : [];
    t.same(
      events
        .filter((e) => e.type !== 'PUBLISHED')
        .map((e) => `${e.type} ${e.consumerId}`)
        .sort(),
      ['ACKED a', ...ackedByB, 'DELIVERED a', 'DELIVERED b'].sort(),
    );
  },
);

t.test('a long poll wakes when a message lands and an aborted one frees its slot', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf();
  const group = groupOf();
  const waiting = broker.receive(topic, group, { ...receiveAll, waitMs: 10_000 });
  await new Promise((r) => setTimeout(r, 50));
  await broker.publish(topic, [text('wake')]);
  const got = await waiting;
  t.same(
    got.map((m) => m.body.toString()),
    ['wake'],
  );
  const controller = new AbortController();
  const parked = broker.receive(topic, group, { ...receiveAll, waitMs: 10_000 }, controller.signal);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(broker.stats().parkedReceives, 1);
  controller.abort();
  t.same(await parked, []);
  t.equal(broker.stats().parkedReceives, 0);
});

t.test('an aborted receive takes nothing, even with messages waiting', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf();
  const group = groupOf();
  await broker.publish(topic, [text('kept')]);
  const controller = new AbortController();
  controller.abort(); // e.g. its credential was revoked while it was parked
  t.same(
    await broker.receive(topic, group, { ...receiveAll, waitMs: 10_000 }, controller.signal),
    [],
  );
  t.equal(broker.stats().inflight, 0, 'nothing left in flight');
  const got = await broker.receive(topic, group, receiveAll);
  t.same(
    got.map((m) => m.body.toString()),
    ['kept'],
  );
});

t.test('consumer state survives a restart: acked stays acked, in flight comes back', async (t) => {
  const harness = brokerHarness(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
  let broker = await harness.open();
  await broker.publish(topic, [text('1'), text('2'), text('3')]);
  // invisible far longer than any restart takes: the in-flight one is still hidden afterwards,
  // then its pre-restart handle (still current) makes it visible, so no guessed delay decides
  const got = await broker.receive(topic, group, {
    maxMessages: 2,
    waitMs: 0,
    tags: '*',
    invisibleMs: 600_000,
  });
  await broker.ack(topic, group, [got[0].receiptHandle]);
  await broker.close();
  broker = await harness.open();
  const next = await broker.receive(topic, group, { maxMessages: 10, waitMs: 0, tags: '*' });
  t.same(
    next.map((m) => m.body.toString()),
    ['3'],
    'the acked one is gone, the in-flight one still hidden',
  );
  await broker.changeVisibility(topic, group, got[1].receiptHandle, 0);
  const redelivered = await broker.receive(topic, group, {
    maxMessages: 10,
    waitMs: 2000,
    tags: '*',
  });
  t.same(
    redelivered.map((m) => [m.body.toString(), m.deliveryAttempt]),
    [['2', 2]],
  );
});

t.test(
  'a parked receive wakes for an in-flight message whose invisibility is shortened',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(topic, [text('m0')]);
    const [m0] = await broker.receive(topic, group, { ...receiveAll, invisibleMs: 60_000 });
    // parked until the in-flight message comes due (a minute) or its wait ends (two)
    const parked = broker.receive(topic, group, { ...receiveAll, waitMs: 120_000 });
    await waitFor('the receive to park', () => broker.longPoll.parkedCount === 1);
    const { nextVisibleTime } = await broker.changeVisibility(topic, group, m0.receiptHandle, 200);
    t.same(
      await bodiesUnlessStillParked(parked, nextVisibleTime + 10_000),
      [['m0', 2]],
      'answered once the message came due',
    );
  },
);

t.test('reset moves a group to earliest, latest or a time', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await broker.publish(topic, [text('old')]);
  const got = await broker.receive(topic, group, receiveAll);
  await broker.ack(
    topic,
    group,
    got.map((m) => m.receiptHandle),
  );
  await broker.resetGroup(topic, group, 'earliest');
  t.same(
    (await broker.receive(topic, group, receiveAll)).map((m) => m.body.toString()),
    ['old'],
  );
  await broker.resetGroup(topic, group, 'latest');
  t.same(await broker.receive(topic, group, receiveAll), []);
  const mark = Date.now() + 1;
  await new Promise((r) => setTimeout(r, 5));
  await broker.publish(topic, [text('new')]);
  await broker.resetGroup(topic, group, 0);
  t.equal((await broker.receive(topic, group, receiveAll)).length, 2);
  await broker.resetGroup(topic, group, mark);
  t.same(
    (await broker.receive(topic, group, receiveAll)).map((m) => m.body.toString()),
    ['new'],
  );
});

t.test(
  'a handle from before 64 (or 128) resets does not ack the delivery after them',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf();
    await broker.publish(topic, [text('m')]);
    const held: string[] = [];
    const attempts = new Set<number>();
    // the attempt field keeps the reset generation modulo 64: 64 and 128 resets bring it back round
    for (let resets = 0; resets <= 128; resets++) {
      const [delivery] = await broker.receive(topic, group, receiveAll);
      attempts.add(delivery.deliveryAttempt);
      if (resets === 0 || resets === 64) held.push(delivery.receiptHandle);
      if (resets === 128) {
        const late = await broker.ack(topic, group, held);
        t.same(
          late.map((r) => (r.ok ? 'ok' : r.code)),
          ['ReceiptHandleExpired', 'ReceiptHandleExpired'],
          'the handles of the deliveries 128 and 64 resets before are over',
        );
        const own = await broker.ack(topic, group, [delivery.receiptHandle]);
        t.same(
          own,
          [{ receiptHandle: delivery.receiptHandle, ok: true }],
          'its own handle acks it',
        );
      }
      await broker.resetGroup(topic, group, 'earliest');
    }
    t.same([...attempts], [1], 'delivered afresh (attempt 1) after each reset');
  },
);

t.test('a queue at its in-flight cap hands out more as soon as acks make room', async (t) => {
  const broker = await openTestBroker(t, { limits: { maxInflightPerQueue: 4 } });
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await broker.publish(
    topic,
    [1, 2, 3, 4, 5, 6].map((i) => text(`m${i}`)),
  );
  const held = await broker.receive(topic, group, { ...receiveAll, invisibleMs: 600_000 });
  t.equal(held.length, 4, 'the cap: four in flight');
  t.same(await broker.receive(topic, group, receiveAll), [], 'none past the cap');
  const parked = broker.receive(topic, group, { ...receiveAll, waitMs: 120_000 });
  await waitFor('the receive to park', () => broker.longPoll.parkedCount === 1);
  await broker.ack(topic, group, [held[0].receiptHandle]);
  t.same(
    await bodiesUnlessStillParked(parked, Date.now() + 30_000),
    [['m5', 1]],
    'the ack woke the parked receive, with the message the room was made for',
  );
});

t.test('query by id shows a message the group’s tag filter passed over as FILTERED', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const [a, b] = await broker.publish(topic, [text('a', { tag: 'A' }), text('b', { tag: 'B' })]);
  const got = await broker.receive(topic, group, { ...receiveAll, tags: 'B' });
  t.same(
    got.map((m) => m.body.toString()),
    ['b'],
  );
  await broker.ack(
    topic,
    group,
    got.map((m) => m.receiptHandle),
  );
  const stateOf = async (messageId: string) =>
    (await broker.getMessage(topic, messageId)).groups?.map((g) => g.state);
  t.same(await stateOf(a.messageId), ['FILTERED'], 'never received: passed over');
  t.same(await stateOf(b.messageId), ['ACKED']);
});

t.test('dead-lettering at the in-flight cap makes room for a parked receive', async (t) => {
  const broker = await openTestBroker(t, { limits: { maxInflightPerQueue: 2 } });
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1 });
  await broker.publish(topic, [text('m1'), text('m2'), text('m3')]);
  const held = await broker.receive(topic, group, { ...receiveAll, invisibleMs: 200 });
  t.equal(held.length, 2, 'the cap');
  // their invisibility ends, their one attempt is spent: they go to the dead-letter queue
  const parked = broker.receive(topic, group, { ...receiveAll, waitMs: 120_000 });
  t.same(
    await bodiesUnlessStillParked(parked, Date.now() + 30_000),
    [['m3', 1]],
    'the moves woke the parked receive',
  );
});

t.test('query by id, key and time; visibility change', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 2 });
  const group = groupOf();
  const published = await broker.publish(topic, [
    text('k1', { keys: ['order-1'], properties: { a: 'b' } }),
    text('k2', { keys: ['order-2'] }),
    { body: Buffer.from([0, 1, 2]), bodyEncoding: 'base64' },
  ]);
  const view = await broker.getMessage(topic, published[0].messageId);
  t.match(view, {
    topic: topic.topic,
    keys: ['order-1'],
    properties: { a: 'b' },
    bodyEncoding: 'utf8',
  });
  await t.rejects(broker.getMessage(topicOf(), published[0].messageId), {
    code: 'MessageNotFound',
  });
  await t.rejects(broker.getMessage(topic, 'nope'), { code: 'MessageNotFound' });
  const byKey = await broker.queryByKey(topic, 'order-2', 10);
  t.same(
    byKey.map((m) => m.body.toString()),
    ['k2'],
  );
  const page1 = await broker.queryByTime(topic, { fromMs: 0, toMs: Date.now() + 1000, limit: 2 });
  t.equal(page1.messages.length, 2);
  t.ok(page1.nextCursor);
  const page2 = await broker.queryByTime(topic, {
    fromMs: 0,
    toMs: Date.now() + 1000,
    limit: 2,
    cursor: page1.nextCursor!,
  });
  t.equal(page2.messages.length, 1);
  t.equal(page2.nextCursor, undefined);
  const all = [...page1.messages, ...page2.messages].map((m) => m.messageId).sort();
  t.same(all, published.map((p) => p.messageId).sort());
  const got = await broker.receive(topic, group, { ...receiveAll, invisibleMs: 60_000 });
  const binary = got.find((m) => m.bodyEncoding === 'base64');
  t.same([...binary!.body], [0, 1, 2]);
  const changed = await broker.changeVisibility(topic, group, got[0].receiptHandle, 0);
  t.ok(changed.nextVisibleTime <= Date.now());
  const again = await broker.receive(topic, group, { ...receiveAll, waitMs: 2000 });
  t.equal(again[0]?.messageId, got[0].messageId);
  await t.rejects(broker.changeVisibility(topic, group, got[0].receiptHandle, 10), {
    code: 'ReceiptHandleExpired',
  });
  await t.rejects(broker.changeVisibility(topic, group, 'x', 10), { code: 'InvalidReceiptHandle' });
  const trace = await broker.trace(topic, got[0].messageId);
  t.same(
    trace.map((e) => e.type),
    ['PUBLISHED', 'DELIVERED', 'RETRIED', 'DELIVERED'],
  );
});

t.test(
  'the trace tells a message’s story: delivered, retried, dead-lettered, re-sent, acked',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ maxDeliveryAttempts: 2, retryPolicy: { backoffSeconds: [0] } });
    const [published] = await broker.publish(topic, [text('x')]);
    const id = published.messageId;
    const request = { maxMessages: 1, waitMs: 3000, tags: '*', invisibleMs: 100 };
    await broker.receive(topic, group, request);
    await broker.receive(topic, group, request);
    let dead = await broker.deadLetters(group, 10);
    for (let i = 0; i < 100 && dead.messages.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 30));
      dead = await broker.deadLetters(group, 10);
    }
    await broker.resendDeadLetters(group, [id]);
    const back = await broker.receive(topic, group, request);
    await broker.ack(
      topic,
      group,
      back.map((m) => m.receiptHandle),
    );
    let types: string[] = [];
    for (let i = 0; i < 50 && !types.includes('ACKED'); i++) {
      types = (await broker.trace(topic, id)).map((e) => e.type);
      if (!types.includes('ACKED')) await new Promise((r) => setTimeout(r, 20));
    }
    t.same(types, [
      'PUBLISHED',
      'DELIVERED',
      'RETRIED',
      'DELIVERED',
      'DEAD_LETTERED',
      'RESENT',
      'DELIVERED',
      'ACKED',
    ]);
    const events = await broker.trace(topic, id);
    t.match(events[3], { type: 'DELIVERED', group: group.group, deliveryAttempt: 2 });
  },
);

t.test('with trace off, a trace has the publish only', async (t) => {
  const broker = await openTestBroker(t, { trace: false });
  const topic = topicOf();
  const [published] = await broker.publish(topic, [text('x')]);
  await broker.receive(topic, groupOf({ createdAt: 0 }), receiveAll);
  t.same(
    (await broker.trace(topic, published.messageId)).map((e) => e.type),
    ['PUBLISHED'],
  );
});

t.test(
  "a receive's byte budget: what does not fit is left for the next receive, unread and with no attempt counted",
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 2 });
    const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
    const bodies = ['a', 'b', 'c', 'd', 'e', 'f'].map((c) => c.repeat(1000));
    await broker.publish(
      topic,
      bodies.map((body) => text(body)),
    );
    // a stored (sealed) body is 1,029 bytes: two fit 2,500, a third does not
    const budget = { ...receiveAll, maxBodyBytes: 2500 };
    const first: Awaited<ReturnType<typeof broker.receive>> = [];
    for (let i = 0; i < 3; i++) {
      const answer = await broker.receive(topic, group, budget);
      t.equal(answer.length, 2, `answer ${i}: two bodies`);
      first.push(...answer);
    }
    t.same(first.map((m) => m.body.toString()).sort(), bodies, 'each message once');
    t.ok(first.every((m) => m.deliveryAttempt === 1));
    t.same(await broker.receive(topic, group, budget), [], 'all six in flight');

    // due again at once: redeliveries are kept to the budget too, the rest stay due
    for (const m of first) await broker.changeVisibility(topic, group, m.receiptHandle, 0);
    const again: typeof first = [];
    while (again.length < 6) {
      const answer = await broker.receive(topic, group, { ...budget, waitMs: 3000 });
      t.ok(answer.length > 0 && answer.length <= 2, `${answer.length} redelivered`);
      again.push(...answer);
    }
    t.same(again.map((m) => m.body.toString()).sort(), bodies);
    t.ok(
      again.every((m) => m.deliveryAttempt === 2),
      'one attempt each: none counted unseen',
    );

    const big = await broker.receive(topicOf(), groupOf(), { ...budget, waitMs: 0 });
    t.same(big, []);
    const one = topicOf({ queueCount: 1 });
    await broker.publish(one, [text('x'.repeat(5000)), text('y')]);
    const single = await broker.receive(one, group, { ...receiveAll, maxBodyBytes: 1 });
    t.same(
      single.map((m) => m.body.length),
      [5000],
      'the first message of an answer may pass the budget',
    );
  },
);

t.test("a queue's next record that cannot fit what is left of a budget is not read", async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 2 });
  const group = groupOf();
  await broker.publish(topic, [
    text('s'.repeat(500), { queueId: 0 }),
    text('b'.repeat(5000), { queueId: 1 }),
  ]);
  const store = broker.store as unknown as {
    readQueue: (topic: string, queueId: number, ...rest: unknown[]) => Promise<unknown>;
  };
  const readQueue = store.readQueue.bind(store);
  const read: number[] = [];
  store.readQueue = (name, queueId, ...rest) => {
    read.push(queueId);
    return readQueue(name, queueId, ...rest);
  };
  // a new group reads queue 0 first: its 500 bytes leave 1,500 of the budget, less than queue
  // 1's record
  const answer = await broker.receive(topic, group, { ...receiveAll, maxBodyBytes: 2000 });
  t.same(
    answer.map((m) => m.body.length),
    [500],
  );
  t.same(read, [0], 'queue 1 was not read');
  const next = await broker.receive(topic, group, { ...receiveAll, maxBodyBytes: 2000 });
  t.same(
    next.map((m) => [m.body.length, m.deliveryAttempt]),
    [[5000, 1]],
    'the next receive has it, as its first message',
  );
});

t.test(
  'BROADCASTING: query by id tells the consumers whose deliveries a dead letter ended from one that acked',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ deliveryMode: 'BROADCASTING', maxDeliveryAttempts: 1 });
    const [published] = await broker.publish(topic, [text('x')]);
    const handles = new Map<string, string>();
    for (const consumerId of ['a', 'b', 'c']) {
      const [got] = await broker.receive(topic, group, { ...receiveAll, consumerId });
      handles.set(consumerId, got.receiptHandle);
    }
    t.ok((await broker.ack(topic, group, [handles.get('b')!]))[0].ok, 'b acks it');
    const states = async () =>
      Object.fromEntries(
        ((await broker.getMessage(topic, published.messageId)).groups ?? []).map((g) => [
          g.consumerId,
          g.state,
        ]),
      );
    // a, then c, let theirs go: visible again at once, with no attempt left it moves to the
    // group's dead letters at its consumer's next receive
    for (const consumerId of ['a', 'c']) {
      await broker.changeVisibility(topic, group, handles.get(consumerId)!, 0);
      await waitFor(`${consumerId}'s dead letter`, async () => {
        await broker.receive(topic, group, { ...receiveAll, consumerId });
        return (await states())[consumerId] === 'DEAD_LETTERED';
      });
    }
    t.same(await states(), { a: 'DEAD_LETTERED', b: 'ACKED', c: 'DEAD_LETTERED' });
    await oneDeadLetterOf(t, broker, topic, group, published.messageId);
    const trace = await broker.trace(topic, published.messageId);
    t.same(
      trace.filter((e) => e.type === 'DEAD_LETTERED').map((e) => e.consumerId),
      ['a', 'c'],
      'the trace names the consumer of each dead letter',
    );
  },
);

t.test(
  'BROADCASTING: consumers whose deliveries of a message end together make one dead letter of it',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 1 });
    const group = groupOf({ deliveryMode: 'BROADCASTING', maxDeliveryAttempts: 1 });
    const [published] = await broker.publish(topic, [text('x')]);
    const consumers = ['a', 'b', 'c', 'd'];
    const handles = await Promise.all(
      consumers.map(async (consumerId) => {
        const [got] = await broker.receive(topic, group, { ...receiveAll, consumerId });
        return got.receiptHandle;
      }),
    );
    for (const handle of handles) await broker.changeVisibility(topic, group, handle, 0);
    // their next receives, together, move it to the dead letters
    await waitFor('every consumer’s delivery dead-lettered', async () => {
      await Promise.all(
        consumers.map((consumerId) => broker.receive(topic, group, { ...receiveAll, consumerId })),
      );
      const view = await broker.getMessage(topic, published.messageId);
      return (view.groups ?? []).every((g) => g.state === 'DEAD_LETTERED');
    });
    await oneDeadLetterOf(t, broker, topic, group, published.messageId);
  },
);

t.test(
  'BROADCASTING: a consumer seen for the first time while a reset is made starts where the reset puts the group',
  async (t) => {
    const broker = await openTestBroker(t);
    // as a client sees it: the new consumer's first receive and a reset to latest sent together,
    // in rounds (the two interleave differently each time)
    let late = 0;
    for (let round = 0; round < 30; round++) {
      const topic = topicOf({ queueCount: 8 });
      const group = groupOf({ deliveryMode: 'BROADCASTING', createdAt: Date.now() - 60_000 });
      await broker.publish(
        topic,
        Array.from({ length: 16 }, (_, i) => text(`before ${i}`)),
      );
      await Promise.all([
        broker.receive(topic, group, { ...receiveAll, maxMessages: 1, consumerId: 'late' }),
        new Promise((resolve) => setTimeout(resolve, round % 3)).then(() =>
          broker.resetGroup(topic, group, 'latest'),
        ),
      ]);
      const after = await broker.receive(topic, group, { ...receiveAll, consumerId: 'late' });
      if (after.length > 0) late++;
    }
    t.equal(late, 0, 'no round left the consumer at its place from before the reset');
  },
);

/** The group's dead letters are the one of `messageId`, listed and counted once. */
async function oneDeadLetterOf(
  t: Test,
  broker: Broker,
  topic: TopicDescriptor,
  group: GroupDescriptor,
  messageId: string,
): Promise<void> {
  const { messages } = await broker.deadLetters(group, 10);
  t.same(
    messages.map((m) => m.messageId),
    [messageId],
    'one dead letter of it for the group',
  );
  t.match(await broker.groupStats(topic, group), { deadLetters: 1 });
}
