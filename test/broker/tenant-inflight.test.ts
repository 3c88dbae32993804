// The tenant's in-flight bound on a broker (tenant-inflight.ts): over all the tenant's groups,
// topics and broadcasting consumer ids, receives take no new messages past it; other tenants are
// not held; acks make room and wake a parked receive; messages due again are still handed out;
// a restart counts what the journal has in flight.
import t from 'tap';
import type { Subscription } from '../../src/broker/consumer-ledger.js';
import { tenantOfStoreTopic } from '../../src/broker/names.js';
import { REFRESH_MS, TenantInflight } from '../../src/broker/tenant-inflight.js';
import {
  brokerHarness,
  fifoOwedBelowInflight,
  groupOf,
  openTestBroker,
  redeliverAll,
  text,
  topicOf,
} from '../helpers/broker.js';
import { waitFor } from '../helpers/wait-for.js';

const receiveAll = { maxMessages: 32, waitMs: 0, tags: '*' };
const LONG = { ...receiveAll, invisibleMs: 600_000 };

function bodies(messages: { body: Buffer }[]): string[] {
  return messages.map((m) => m.body.toString()).sort();
}

t.test(
  'a tenant at its bound takes no new messages over its groups, topics and consumers',
  async (t) => {
    const broker = await openTestBroker(t, { limits: { maxInflightPerTenant: 5 } });
    const first = topicOf({ queueCount: 1 });
    const second = topicOf({ queueCount: 2 });
    const other = topicOf({ tenantId: 't2', queueCount: 1 });
    // groups receive what was stored after they were created
    const clustering = groupOf();
    const broadcasting = groupOf({ deliveryMode: 'BROADCASTING' });
    const late = groupOf();
    const otherTenant = groupOf({ tenantId: 't2' });
    await broker.publish(first, [text('a1'), text('a2'), text('a3')]);
    await broker.publish(second, [text('b1'), text('b2'), text('b3'), text('b4')]);
    await broker.publish(
      other,
      [1, 2, 3, 4, 5, 6].map((i) => text(`x${i}`)),
    );

    t.equal((await broker.receive(first, clustering, LONG)).length, 3, 'under the bound: all');
    const one = await broker.receive(second, broadcasting, { ...LONG, consumerId: 'c1' });
    t.equal(one.length, 2, 'the bound counts every group and topic of the tenant: 3 + 2');
    t.same(
      await broker.receive(second, broadcasting, { ...LONG, consumerId: 'c2' }),
      [],
      'another consumer id of the tenant: nothing new past the bound',
    );
    t.same(await broker.receive(first, late, LONG), [], 'another group: nothing new');
    t.equal(
      (await broker.receive(other, otherTenant, LONG)).length,
      5,
      'another tenant has its own bound',
    );
    const stats = await broker.groupStats(second, broadcasting);
    t.equal(stats.inflight, 2, 'stats count what is in flight');
  },
);

t.test('acks at the bound wake a parked receive of the tenant on another topic', async (t) => {
  const broker = await openTestBroker(t, { limits: { maxInflightPerTenant: 2 } });
  const first = topicOf({ queueCount: 1 });
  const second = topicOf({ queueCount: 1 });
  const holder = groupOf();
  const waiter = groupOf();
  await broker.publish(first, [text('a1'), text('a2')]);
  await broker.publish(second, [text('b1')]);
  const held = await broker.receive(first, holder, LONG);
  t.equal(held.length, 2);
  const parked = broker.receive(second, waiter, { ...LONG, waitMs: 120_000 });
  await waitFor('the receive to park', () => broker.longPoll.parkedCount === 1);
  const [ack] = await broker.ack(first, holder, [held[0].receiptHandle]);
  t.ok(ack.ok, 'acked');
  let answer: string[] | undefined;
  void parked.then((messages) => (answer = bodies(messages)));
  // without the wake it would wait out its 120 s
  await waitFor('the parked receive to answer', () => answer !== undefined, { timeoutMs: 30_000 });
  t.same(answer, ['b1'], 'woken with the message room was made for');
});

t.test('at the bound, messages due again are still handed out', async (t) => {
  const broker = await openTestBroker(t, { limits: { maxInflightPerTenant: 2 } });
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ retryPolicy: { backoffSeconds: [0] } });
  await broker.publish(topic, [text('m1'), text('m2'), text('m3')]);
  const first = await broker.receive(topic, group, { ...receiveAll, invisibleMs: 200 });
  t.same(bodies(first), ['m1', 'm2'], 'the bound');
  const again = await broker.receive(topic, group, { ...receiveAll, waitMs: 30_000 });
  t.same(bodies(again), ['m1', 'm2'], 'their invisibility ended: delivered again, not m3');
  t.same(
    again.map((m) => m.deliveryAttempt),
    [2, 2],
  );
});

t.test('a restart counts what the journal has in flight', async (t) => {
  const harness = brokerHarness(t);
  const limits = { maxInflightPerTenant: 3 };
  const before = await harness.open({ limits });
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await before.publish(
    topic,
    ['m1', 'm2', 'm3', 'm4'].map((b) => text(b)),
  );
  t.equal((await before.receive(topic, group, LONG)).length, 3);
  await before.close();
  const after = await harness.open({ limits });
  t.same(await after.receive(topic, groupOf(), LONG), [], 'still at the bound after the restart');
});

t.test('the count: reserved at once, freed at the next pass, room wakes the full', (t) => {
  let nowMs = 0;
  const inflight = new Map<string, number>([['t1/i1/a', 3]]);
  const subs = () =>
    [...inflight].map(([topic, count]) => ({ topic, inflightCount: () => count }) as Subscription);
  const woken: string[] = [];
  const full: string[] = [];
  const count = new TenantInflight({
    limit: 5,
    subscriptions: subs,
    onRoom: (tenantId) => woken.push(tenantId),
    onFull: (tenantId) => full.push(tenantId),
    now: () => nowMs,
  });
  t.teardown(() => count.close());
  t.equal(count.reserve('t1', 1), 1, 'the first reservation counts what is in flight: 3 of 5');
  t.equal(count.reserve('t1', 5), 1, 'a reservation not given back yet holds its room');
  t.same(full, ['t1'], 'reported');
  t.equal(count.reserve('t2', 5), 5, 'another tenant');
  count.release('t2', 5, 0);
  count.release('t1', 1, 1);
  count.release('t1', 1, 0);
  t.equal(count.reserve('t1', 5), 1, 'what was handed out counts, what was not is free again');
  count.release('t1', 1, 1);
  inflight.set('t1/i1/a', 1); // acks
  nowMs += REFRESH_MS - 1;
  t.equal(count.reserve('t1', 1), 0, 'acks are seen at the next pass, not before');
  t.same(woken, []);
  nowMs += 1;
  count.refresh();
  t.same(woken, ['t1'], 'the pass that finds room wakes the tenant');
  t.equal(count.reserve('t1', 10), 4);
  t.same(full, ['t1'], 'reported once a minute at most');
  t.equal(tenantOfStoreTopic('t9/i1/%DLQ%/g'), 't9');
  t.end();
});

t.test('receives of many subscriptions at once do not pass the bound together', async (t) => {
  const broker = await openTestBroker(t, { limits: { maxInflightPerTenant: 10 } });
  const topic = topicOf({ queueCount: 2 });
  const group = groupOf({ deliveryMode: 'BROADCASTING' });
  const other = groupOf();
  const receives = () => [
    ...Array.from({ length: 8 }, (_, i) =>
      broker.receive(topic, group, { ...LONG, consumerId: `c${i}` }),
    ),
    broker.receive(topic, other, LONG),
  ];
  // every subscription has its cursors: the receives below look at once
  t.same((await Promise.all(receives())).flat(), []);
  await broker.publish(
    topic,
    Array.from({ length: 40 }, (_, i) => text(`m${i}`)),
  );
  const answers = await Promise.all(receives());
  t.equal(
    answers.reduce((sum, got) => sum + got.length, 0),
    10,
    'nine receives at once took the bound between them, no more',
  );
});

t.test(
  'FIFO: an owed message below the in-flight ones goes out at the tenant’s bound',
  async (t) => {
    const { topic, group, sent, second, crash } = await fifoOwedBelowInflight(t);
    t.equal(second.length, 10);
    // after the restart the first ten are owed, below ten in flight past the tenant's bound of 8:
    // without the exception the owed ten never go out and the ten above them never come due
    const after = await crash({ limits: { maxInflightPerTenant: 8 } });
    t.same(
      await redeliverAll(after, topic, group, 20),
      sent,
      'everything is delivered again, in order',
    );
  },
);
