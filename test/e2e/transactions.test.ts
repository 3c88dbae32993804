// Transactional messages through signed HTTP against a real broker: half messages invisible
// until committed, commit delivering once however often it is repeated, rollback, the conflict
// and not-found rules, check-back with back-off and the automatic rollbacks, a restart.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from '../helpers/wait-for.js';
import { clientOf, drain } from '../helpers/txn-client.js';
import { startWharf, type WharfOverrides } from '../helpers/wharf.js';

async function setup(t: Test, overrides: WharfOverrides = {}) {
  const wharf = await startWharf(t, overrides);
  const client = await clientOf(wharf);
  await client.topic('orders');
  await client.group('billing');
  return { wharf, ...client };
}

const HEX32 = /^[0-9A-F]{32}$/;

t.test('a half message is invisible until committed, then delivered once', async (t) => {
  const c = await setup(t);
  const [half] = await c.publish('orders', [
    { body: 'pay 17', tag: 'pay', keys: ['order-17'], properties: { k: 'v' }, shardingKey: 's' },
  ]);
  t.match(half.messageId, HEX32);
  t.type(half.transactionId, 'string');
  t.not(half.transactionId, half.messageId, 'the transaction id is not the message id');
  t.same(await c.receive('orders', 'billing'), [], 'undecided: invisible to the group');
  const byKey = await c.call('GET', '/topics/orders/messages?key=order-17');
  t.same(byKey.body?.messages, [], 'undecided: not found by key');
  t.equal((await c.call('GET', `/topics/orders/messages/${half.messageId}`)).status, 404);
  const cancelUndecided = await c.call('DELETE', `/topics/orders/messages/${half.messageId}`);
  t.equal(cancelUndecided.status, 404, 'undecided: a cancel finds no message, as a query');
  t.match(cancelUndecided.body, { error: { code: 'MessageNotFound' } });

  t.equal((await c.decide('orders', half.transactionId, 'commit')).status, 204);
  const cancelCommitted = await c.call('DELETE', `/topics/orders/messages/${half.messageId}`);
  t.equal(cancelCommitted.status, 409, 'committed: a message that was never delayed');
  t.match(cancelCommitted.body, { error: { code: 'Conflict' } });
  t.equal((await c.decide('orders', half.transactionId, 'commit')).status, 204, 'idempotent');
  const [got] = await drain(c, 'orders', 'billing', 1);
  t.match(got, {
    messageId: half.messageId,
    body: 'pay 17',
    tag: 'pay',
    keys: ['order-17'],
    properties: { k: 'v' },
    shardingKey: 's',
  });
  const view = await c.call('GET', `/topics/orders/messages/${half.messageId}`);
  t.equal(view.status, 200);
  t.equal(view.body?.publishTime, got.publishTime, 'one publish time everywhere');
  const found = await c.call('GET', '/topics/orders/messages?key=order-17');
  t.match(found.body?.messages, [{ messageId: half.messageId }], 'by key: the committed copy');
  t.equal(
    (
      await c.call('POST', '/topics/orders/groups/billing/ack', {
        receiptHandles: [got.receiptHandle],
      })
    ).status,
    200,
  );
  // a third commit, after delivery and ack: still 204, still nothing new
  t.equal((await c.decide('orders', half.transactionId, 'commit')).status, 204);
  t.same(await c.receive('orders', 'billing'), [], 'a repeated commit never delivers twice');
  t.equal((await c.decide('orders', half.transactionId, 'rollback')).status, 409);
  const types = await waitFor('the trace', async () => {
    const events = (await c.trace('orders', half.messageId)).map((e) => e.type);
    return events.includes('ACKED') && events;
  });
  t.same(types, ['PUBLISHED', 'COMMITTED', 'DELIVERED', 'ACKED']);
});

t.test('concurrent commits of one transaction deliver once', async (t) => {
  const c = await setup(t);
  const halves = await c.publish('orders', [{ body: 'a' }, { body: 'b' }]);
  const answers = await Promise.all(
    halves.flatMap((h) => [1, 2, 3].map(() => c.decide('orders', h.transactionId, 'commit'))),
  );
  t.same(
    answers.map((a) => a.status),
    [204, 204, 204, 204, 204, 204],
  );
  const got = await drain(c, 'orders', 'billing', 2);
  t.same(got.map((m) => m.body).sort(), ['a', 'b']);
  t.same(await c.receive('orders', 'billing'), []);
});

t.test('racing commit and rollback: one wins, the other is 409', async (t) => {
  const c = await setup(t);
  const halves = await c.publish(
    'orders',
    Array.from({ length: 8 }, (_, i) => ({ body: `race ${i}` })),
  );
  const outcomes = await Promise.all(
    halves.map(async (h) => {
      const [commit, rollback] = await Promise.all([
        c.decide('orders', h.transactionId, 'commit'),
        c.decide('orders', h.transactionId, 'rollback'),
      ]);
      return [commit.status, rollback.status].sort().join('/');
    }),
  );
  t.same(new Set(outcomes), new Set(['204/409']), 'exactly one decision each');
  const expected = await Promise.all(
    halves.map(async (h) =>
      (await c.decide('orders', h.transactionId, 'commit')).status === 204 ? 1 : 0,
    ),
  );
  const committed = expected.reduce<number>((a, b) => a + b, 0);
  if (committed > 0) t.equal((await drain(c, 'orders', 'billing', committed)).length, committed);
  t.same(await c.receive('orders', 'billing'), [], 'the winners only, once each');
});

t.test('rollback discards; the contrary decision is 409 and changes nothing', async (t) => {
  const c = await setup(t);
  const [first, second] = await c.publish('orders', [{ body: 'x' }, { body: 'y' }]);
  t.equal((await c.decide('orders', first.transactionId, 'rollback')).status, 204);
  t.equal((await c.decide('orders', first.transactionId, 'rollback')).status, 204, 'idempotent');
  const conflict = await c.decide('orders', first.transactionId, 'commit');
  t.equal(conflict.status, 409);
  t.equal((conflict.body?.error as { code: string }).code, 'Conflict');
  t.equal((await c.decide('orders', second.transactionId, 'commit')).status, 204);
  const got = await drain(c, 'orders', 'billing', 1);
  t.same(
    got.map((m) => m.body),
    ['y'],
    'only the committed one',
  );
  t.same(await c.receive('orders', 'billing'), [], 'the rolled-back one never comes');
  t.equal((await c.call('GET', `/topics/orders/messages/${first.messageId}`)).status, 404);
  const types = await waitFor('the trace', async () => {
    const events = (await c.trace('orders', first.messageId)).map((e) => e.type);
    return events.includes('ROLLED_BACK') && events;
  });
  t.same(types, ['PUBLISHED', 'ROLLED_BACK']);
  t.same(await c.check('orders'), [], 'decided ones are never offered');
});

t.test(
  'unknown, malformed, forged and other tenants’ ids are 404 TransactionNotFound',
  async (t) => {
    const c = await setup(t);
    const other = await clientOf(c.wharf);
    await other.topic('orders');
    await c.topic('invoices');
    const [mine] = await c.publish('orders', [{ body: 'mine' }]);
    const [theirs] = await other.publish('orders', [{ body: 'theirs' }]);
    const forged = mine.transactionId.slice(0, 31) + (mine.transactionId.endsWith('0') ? '1' : '0');
    const cases: [string, string, string][] = [
      ['unknown', 'orders', '0123456789ABCDEF0123456789ABCDEF'],
      ['malformed', 'orders', 'not-an-id'],
      ['lowercase spelling', 'orders', mine.transactionId.toLowerCase()],
      ['forged', 'orders', forged],
      ['the message id', 'orders', mine.messageId],
      ["another tenant's", 'orders', theirs.transactionId],
      ['of another topic', 'invoices', mine.transactionId],
    ];
    for (const [what, topic, id] of cases) {
      for (const decision of ['commit', 'rollback'] as const) {
        const res = await c.decide(topic, id, decision);
        t.equal(res.status, 404, `${what} ${decision}`);
        t.equal(
          (res.body?.error as { code: string }).code,
          'TransactionNotFound',
          `${what} ${decision}`,
        );
      }
    }
    await c.topic('plain', 'NORMAL');
    t.equal((await c.decide('plain', mine.transactionId, 'commit')).status, 404, 'NORMAL topic');
    t.equal((await c.call('POST', '/topics/plain/transactions/check', {})).status, 400);
    // nothing above decided anything: both are still theirs to commit
    t.equal((await other.decide('orders', theirs.transactionId, 'commit')).status, 204);
    t.equal((await c.decide('orders', mine.transactionId, 'rollback')).status, 204);
  },
);

t.test('check-back offers overdue halves with back-off, then rolls back', async (t) => {
  const c = await setup(t, {
    transactions: { checkDelayMs: 300, maxCheckIntervalMs: 600, maxChecks: 3, sweepIntervalMs: 50 },
  });
  const [answered, silent] = await c.publish('orders', [
    { body: 'answered', tag: 'T', keys: ['k1'] },
    { body: 'silent' },
  ]);
  t.same(await c.check('orders'), [], 'not overdue yet');
  // the long poll answers once the check delay has passed
  const first = await c.check('orders', 10);
  t.same(first.map((m) => [m.body, m.checkCount]).sort(), [
    ['answered', 1],
    ['silent', 1],
  ]);
  const offered = first.find((m) => m.body === 'answered')!;
  t.match(offered, {
    transactionId: answered.transactionId,
    messageId: answered.messageId,
    tag: 'T',
    keys: ['k1'],
  });
  t.same(await c.check('orders'), [], 'not offered again before its back-off');
  t.equal((await c.decide('orders', offered.transactionId, 'commit')).status, 204);
  const second = await c.check('orders', 10);
  t.same(
    second.map((m) => [m.body, m.checkCount]),
    [['silent', 2]],
  );
  const third = await c.check('orders', 10);
  t.same(
    third.map((m) => [m.body, m.checkCount]),
    [['silent', 3]],
  );
  // out of checks: rolled back once its last answer window passed, with nobody asking
  const events = await waitFor(
    'the automatic rollback',
    async () => {
      const trace = await c.trace('orders', silent.messageId);
      return trace.some((e) => e.type === 'ROLLED_BACK') && trace;
    },
    { timeoutMs: 20_000 },
  );
  t.same(
    events.map((e) => e.type),
    ['PUBLISHED', 'CHECKED', 'CHECKED', 'CHECKED', 'ROLLED_BACK'],
  );
  t.match(events.at(-1), { reason: 'CHECK_LIMIT', checkCount: 3 });
  t.equal((await c.decide('orders', silent.transactionId, 'commit')).status, 409);
  const got = await drain(c, 'orders', 'billing', 1);
  t.same(
    got.map((m) => m.body),
    ['answered'],
  );
  t.same(await c.check('orders'), []);
});

t.test('an undecided half older than the age limit is rolled back', async (t) => {
  const c = await setup(t, {
    transactions: { checkDelayMs: 60_000, maxAgeMs: 300, sweepIntervalMs: 50 },
  });
  const [half] = await c.publish('orders', [{ body: 'old' }]);
  const events = await waitFor('the automatic rollback', async () => {
    const trace = await c.trace('orders', half.messageId);
    return trace.some((e) => e.type === 'ROLLED_BACK') && trace;
  });
  t.match(events.at(-1), { type: 'ROLLED_BACK', reason: 'AGE_LIMIT' });
  t.equal((await c.decide('orders', half.transactionId, 'commit')).status, 409);
  t.equal((await c.decide('orders', half.transactionId, 'rollback')).status, 204);
});

t.test('a publish with a stored dedupId answers the same transaction', async (t) => {
  const c = await setup(t);
  const [first] = await c.publish('orders', [{ body: 'once', dedupId: 'd-1' }]);
  const [again] = await c.publish('orders', [{ body: 'once', dedupId: 'd-1' }]);
  t.match(again, { messageId: first.messageId, transactionId: first.transactionId });
  t.equal((await c.decide('orders', again.transactionId, 'commit')).status, 204);
  t.equal((await drain(c, 'orders', 'billing', 1)).length, 1);
});

t.test('undecided halves and decisions survive a restart', async (t) => {
  const redisHolder = await startWharf(t);
  const brokerDir = join(t.testdir(), 'broker');
  const before = await startWharf(t, { redisUrl: redisHolder.redisUrl, brokerDir });
  const c1 = await clientOf(before);
  await c1.topic('orders');
  await c1.group('billing');
  const [committed, rolledBack, undecided, committedLater] = await c1.publish('orders', [
    { body: 'committed' },
    { body: 'rolled back' },
    { body: 'undecided' },
    { body: 'committed later' },
  ]);
  t.equal((await c1.decide('orders', committed.transactionId, 'commit')).status, 204);
  t.equal((await c1.decide('orders', rolledBack.transactionId, 'rollback')).status, 204);
  await before.close();

  const after = await startWharf(t, {
    redisUrl: redisHolder.redisUrl,
    brokerDir,
    transactions: { checkDelayMs: 0 },
  });
  const c2 = await clientOf(after, c1.tenant);
  t.equal(after.broker.undecidedTransactions(), 2, 'the undecided set rebuilt from the store');
  t.equal((await c2.decide('orders', committed.transactionId, 'commit')).status, 204);
  t.equal((await c2.decide('orders', committed.transactionId, 'rollback')).status, 409);
  t.equal((await c2.decide('orders', rolledBack.transactionId, 'commit')).status, 409);
  const offered = await c2.check('orders', 5);
  t.same(offered.map((m) => m.body).sort(), ['committed later', 'undecided']);
  t.equal((await c2.decide('orders', committedLater.transactionId, 'commit')).status, 204);
  t.equal((await c2.decide('orders', undecided.transactionId, 'rollback')).status, 204);
  const got = await drain(c2, 'orders', 'billing', 2);
  t.same(got.map((m) => m.body).sort(), ['committed', 'committed later']);
  t.same(await c2.receive('orders', 'billing'), [], 'each exactly once');
});

t.test('deleting the topic forgets its transactions', async (t) => {
  const c = await setup(t);
  const [half] = await c.publish('orders', [{ body: 'gone' }]);
  t.equal((await c.call('DELETE', '/topics/orders')).status, 204);
  await c.topic('orders');
  t.equal((await c.decide('orders', half.transactionId, 'commit')).status, 404);
  t.equal(c.wharf.broker.undecidedTransactions(), 0);
});

t.test('deleting the instance drops its half messages and transactions', async (t) => {
  const c = await setup(t);
  await c.publish('orders', [{ body: 'shredded' }]);
  t.equal(c.wharf.broker.undecidedTransactions(), 1);
  const res = await c.call('DELETE', '');
  t.equal(res.status, 204);
  t.equal(c.wharf.broker.undecidedTransactions(), 0);
  const prefix = `${c.tenant.tenantId}/${c.tenant.instanceId}/`;
  t.same(
    c.wharf.broker.store.topics().filter((name) => name.startsWith(prefix)),
    [],
    'no half topic left',
  );
});

t.test('nothing of a transaction is kept in Redis', async (t) => {
  const c = await setup(t, { transactions: { checkDelayMs: 0 } });
  await c.publish('orders', [{ body: 'warm-up' }]); // the instance's data key is made here
  const redis = new Redis(c.wharf.redisUrl);
  t.teardown(() => redis.disconnect());
  const keys = async () => (await redis.keys('*')).sort();
  const before = await keys();
  const [a, b, undecided] = await c.publish('orders', [
    { body: 'a' },
    { body: 'b' },
    { body: 'u' },
  ]);
  await c.decide('orders', a.transactionId, 'commit');
  await c.decide('orders', b.transactionId, 'rollback');
  t.ok((await c.check('orders')).some((m) => m.transactionId === undecided.transactionId));
  t.same(await keys(), before, 'no key added: the broker rebuilds everything from its disk');
});
