// Delayed messages through signed HTTP: deliverAt / delaySeconds, refusal on FIFO and
// TRANSACTION topics, delivery at the due ms with the original id, tag, keys, properties and
// publish time, query state, cancel (204 / 409 / 404), trace events, and a broker without wheel.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { MetaKeys } from '../../src/meta/index.js';
import { startTestRedis } from '../helpers/redis.js';
import { clientFor, delayClient } from '../helpers/delay-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { provisionTenant, startWharf } from '../helpers/wharf.js';

/**
 * A node on its own Redis and broker directory, with a client of a new tenant; the restart stops
 * it, deletes its delay wheel from Redis and starts it again on both, with a client of the same
 * tenant.
 */
async function restartableNode(t: Test, dirPrefix: string) {
  const redis = await startTestRedis(t);
  const brokerDir = mkdtempSync(join(tmpdir(), dirPrefix));
  t.teardown(() => rmSync(brokerDir, { recursive: true, force: true }));
  const first = await startWharf(t, { brokerDir, redisUrl: redis.url });
  const tenant = await provisionTenant(first);
  const a = clientFor(first, tenant.instanceId, tenant.accessKeyId, tenant.accessKeySecret);
  const restartWithoutWheel = async () => {
    await first.close();
    const keys = new MetaKeys();
    const admin = new Redis(redis.url);
    await admin.del(keys.wheelMark('0'), keys.wheelPending('0'));
    await admin.quit();
    const second = await startWharf(t, { brokerDir, redisUrl: redis.url });
    const b = clientFor(second, tenant.instanceId, tenant.accessKeyId, tenant.accessKeySecret);
    return { second, b };
  };
  return { a, restartWithoutWheel };
}

t.test('a delayed message arrives at its ms with its original id, tag, keys, props', async (t) => {
  const { call, publish, receive } = await delayClient(t);
  t.equal(
    (await call('PUT', '/topics/later', { messageType: 'DELAY', queueCount: 2 })).status,
    201,
  );
  t.equal((await call('PUT', '/groups/g1', {})).status, 201);
  t.same(await receive('later', 'g1'), []); // the group starts before the delayed publish
  const deliverAt = Date.now() + 700;
  const published = await publish('later', [
    { body: 'ding', tag: 'T1', keys: ['k-1'], properties: { p: 'v' }, deliverAt },
    { body: 'now' },
  ]);
  t.equal(published.status, 200);
  const [delayed, immediate] = published.body.messages as { messageId: string }[];

  const scheduled = await call('GET', `/topics/later/messages/${delayed.messageId}`);
  t.equal(scheduled.status, 200);
  t.match(scheduled.body, { scheduleState: 'SCHEDULED', deliverAt, queueOffset: -1, tag: 'T1' });

  const first = await receive('later', 'g1');
  t.same(
    first.map((m) => m.messageId),
    [immediate.messageId],
    'only the undelayed one is there before its time',
  );
  const got = await waitFor('the delayed message', async () => {
    const messages = await receive('later', 'g1');
    return messages.length > 0 ? { messages, at: Date.now() } : null;
  });
  t.equal(got.messages.length, 1);
  const m = got.messages[0];
  t.ok(got.at >= deliverAt, 'not before its time');
  t.match(m, {
    messageId: delayed.messageId,
    body: 'ding',
    tag: 'T1',
    keys: ['k-1'],
    properties: { p: 'v' },
  });
  t.ok(m.publishTime < deliverAt, 'publishTime is the original publish time');

  const delivered = await waitFor('query shows DELIVERED', async () => {
    const res = await call('GET', `/topics/later/messages/${delayed.messageId}`);
    return res.body.scheduleState === 'DELIVERED' ? res : null;
  });
  t.match(delivered.body, { deliverAt, messageId: delayed.messageId, groups: [{ group: 'g1' }] });
  t.ok(delivered.body.queueOffset >= 0);
  t.equal((await call('DELETE', `/topics/later/messages/${delayed.messageId}`)).status, 409);

  const byKey = await call('GET', '/topics/later/messages?key=k-1');
  t.equal(byKey.body.messages.length, 1, 'found by key once delivered');

  const trace = await call('GET', `/topics/later/messages/${delayed.messageId}/trace`);
  t.same(
    (trace.body.events as { type: string }[]).map((e) => e.type),
    ['PUBLISHED', 'SCHEDULED', 'DELIVERED', 'ACKED'],
  );
});

t.test('a batch the store refuses stores none of it, its delayed messages neither', async (t) => {
  const { call, publish, receive } = await delayClient(t);
  t.equal((await call('PUT', '/topics/mixed', { messageType: 'DELAY' })).status, 201);
  t.equal((await call('PUT', '/groups/g1', {})).status, 201);
  t.same(await receive('mixed', 'g1'), []);
  const deliverAt = Date.now() + 300;
  // 128 characters pass the schema; 256 UTF-8 bytes are over the store's 255 for a tag
  const refused = await publish('mixed', [
    { body: 'late', deliverAt },
    { body: 'bad', tag: 'é'.repeat(128) },
  ]);
  t.equal(refused.status, 400);
  t.equal(refused.body.error.code, 'InvalidArgument');
  // the client fixes the batch and sends it again, as a 4xx tells it to
  t.equal((await publish('mixed', [{ body: 'late', deliverAt }, { body: 'fixed' }])).status, 200);
  // a marker due after the others: once it is delivered, every earlier one is
  t.equal((await publish('mixed', [{ body: 'marker', deliverAt: deliverAt + 200 }])).status, 200);
  const bodies: string[] = [];
  await waitFor('the marker', async () => {
    for (const m of await receive('mixed', 'g1', true)) bodies.push(m.body);
    return bodies.includes('marker') ? true : null;
  });
  for (const m of await receive('mixed', 'g1', true)) bodies.push(m.body);
  t.same(
    bodies.sort(),
    ['fixed', 'late', 'marker'],
    'each message once: the refused batch stored nothing',
  );
});

t.test('delaySeconds on a NORMAL topic; FIFO and TRANSACTION refuse a delay', async (t) => {
  const { call, publish } = await delayClient(t);
  await call('PUT', '/topics/plain', { messageType: 'NORMAL' });
  await call('PUT', '/topics/ordered', { messageType: 'FIFO' });
  await call('PUT', '/topics/txn', { messageType: 'TRANSACTION' });
  const res = await publish('plain', [{ body: 'x', delaySeconds: 30 }]);
  t.equal(res.status, 200);
  const view = await call('GET', `/topics/plain/messages/${res.body.messages[0].messageId}`);
  t.equal(view.body.scheduleState, 'SCHEDULED');
  t.ok(Math.abs(view.body.deliverAt - (Date.now() + 30_000)) < 5_000);
  for (const topic of ['ordered', 'txn']) {
    const refused = await publish(topic, [
      { body: 'x', deliverAt: Date.now() + 10_000, shardingKey: 'a' },
    ]);
    t.equal(refused.status, 400, topic);
    t.equal(refused.body.error.code, 'InvalidArgument');
  }
  const tooFar = await publish('plain', [{ body: 'x', deliverAt: Date.now() + 41 * 86_400_000 }]);
  t.equal(tooFar.status, 400);
});

t.test('cancel: 204 before its time, never delivered; 404 unknown or another tenant', async (t) => {
  const a = await delayClient(t);
  await a.call('PUT', '/topics/later', { messageType: 'DELAY' });
  await a.call('PUT', '/groups/g1', {});
  await a.receive('later', 'g1');
  const due = Date.now() + 600;
  const res = await a.publish('later', [
    { body: 'cancel me', deliverAt: due },
    { body: 'keep me', deliverAt: due },
  ]);
  const [gone, kept] = res.body.messages as { messageId: string }[];

  const tenantB = await provisionTenant(a.wharf);
  const b = clientFor(a.wharf, tenantB.instanceId, tenantB.accessKeyId, tenantB.accessKeySecret);
  await b.call('PUT', '/topics/later', { messageType: 'DELAY' });
  t.equal((await b.call('DELETE', `/topics/later/messages/${gone.messageId}`)).status, 404);
  t.equal(
    (await a.call('DELETE', '/topics/later/messages/0123456789ABCDEF0123456789ABCDEF')).status,
    404,
  );

  t.equal((await a.call('DELETE', `/topics/later/messages/${gone.messageId}`)).status, 204);
  t.equal((await a.call('DELETE', `/topics/later/messages/${gone.messageId}`)).status, 204);
  const view = await a.call('GET', `/topics/later/messages/${gone.messageId}`);
  t.equal(view.body.scheduleState, 'CANCELLED');

  const got = await waitFor('the kept message', async () => {
    const messages = await a.receive('later', 'g1');
    return messages.length > 0 ? messages : null;
  });
  t.same(
    got.map((m) => m.messageId),
    [kept.messageId],
  );
  // the cancelled one was due with it: released in the same batch, skipped
  await waitFor('both released', () => a.wharf.broker.scheduler!.stats().scheduleHeld === 0);
  t.same(await a.receive('later', 'g1'), []);
  const trace = await a.call('GET', `/topics/later/messages/${gone.messageId}/trace`);
  t.same(
    (trace.body.events as { type: string }[]).map((e) => e.type),
    ['PUBLISHED', 'SCHEDULED', 'CANCELLED'],
  );
  const normal = await a.publish('later', [{ body: 'plain' }]);
  t.equal(
    (await a.call('DELETE', `/topics/later/messages/${normal.body.messages[0].messageId}`)).status,
    409,
    'an ordinary message cannot be cancelled',
  );
});

t.test('a broker without a delay wheel refuses delayed publishes clearly', async (t) => {
  const { call, publish } = await delayClient(t, { scheduler: false });
  await call('PUT', '/topics/later', { messageType: 'DELAY' });
  const res = await publish('later', [{ body: 'x', delaySeconds: 5 }]);
  t.equal(res.status, 400);
  t.match(res.body.error.message, /delayed delivery is not available/);
});

t.test('a cancel and pending schedules survive a restart and a wheel rebuild', async (t) => {
  const { a, restartWithoutWheel } = await restartableNode(t, 'wharf-delay-restart-');
  await a.call('PUT', '/topics/later', { messageType: 'DELAY' });
  await a.call('PUT', '/groups/g1', {});
  await a.receive('later', 'g1');
  const due = Date.now() + 2_500;
  const res = await a.publish('later', [
    { body: 'cancel me', deliverAt: due },
    { body: 'keep me', deliverAt: due },
  ]);
  const [gone, kept] = res.body.messages as { messageId: string }[];
  t.equal((await a.call('DELETE', `/topics/later/messages/${gone.messageId}`)).status, 204);
  // the wheel too is gone: the restarted broker rebuilds it from its schedule records
  const { second, b } = await restartWithoutWheel();
  t.equal(
    (await b.call('GET', `/topics/later/messages/${gone.messageId}`)).body.scheduleState,
    'CANCELLED',
  );
  t.equal(
    (await b.call('GET', `/topics/later/messages/${kept.messageId}`)).body.scheduleState,
    'SCHEDULED',
  );
  const got = await waitFor('the kept message after the restart', async () => {
    const messages = await b.receive('later', 'g1');
    return messages.length > 0 ? messages : null;
  });
  t.same(
    got.map((m) => m.body),
    ['keep me'],
  );
  await waitFor('both released', () => second.broker.scheduler!.stats().scheduleHeld === 0);
  t.same(await b.receive('later', 'g1'), [], 'the cancelled one never comes');
  t.equal((await b.call('DELETE', `/topics/later/messages/${gone.messageId}`)).status, 204);
  t.equal((await b.call('DELETE', `/topics/later/messages/${kept.messageId}`)).status, 409);
});

t.test('deleting the instance drops its schedules: nothing is dispatched after', async (t) => {
  const a = await delayClient(t);
  await a.call('PUT', '/topics/later', { messageType: 'DELAY' });
  const due = Date.now() + 800;
  t.equal((await a.publish('later', [{ body: 'x', deliverAt: due }])).status, 200);
  const scheduler = a.wharf.broker.scheduler!;
  await waitFor('fed to the wheel', () => scheduler.isReady());
  const deleted = await a.call('DELETE', '');
  t.equal(deleted.status, 204);
  await waitFor('its due time passed and released', () => {
    return Date.now() > due + 200 && scheduler.stats().scheduleHeld === 0;
  });
  t.equal(scheduler.dispatched, 0);
  t.same(
    a.wharf.broker.store.topics().filter((name) => name.startsWith(a.storePrefix)),
    [],
    'no topic of the instance is left',
  );
});

t.test(
  'a delayed message of a deleted topic is never delivered, not even to a new one',
  async (t) => {
    const a = await delayClient(t);
    await a.call('PUT', '/topics/later', { messageType: 'DELAY' });
    const due = Date.now() + 1000;
    const res = await a.publish('later', [{ body: 'old', deliverAt: due }]);
    t.equal(res.status, 200);
    const [old] = res.body.messages as { messageId: string }[];
    t.equal((await a.call('DELETE', '/topics/later')).status, 204);
    // the same name again, with a group reading it from the start and a message due just after
    t.equal((await a.call('PUT', '/topics/later', { messageType: 'DELAY' })).status, 201);
    await a.call('PUT', '/groups/g1', {});
    t.same(await a.receive('later', 'g1'), []);
    const fresh = await a.publish('later', [{ body: 'new', deliverAt: due + 100 }]);
    const [control] = fresh.body.messages as { messageId: string }[];
    t.equal((await a.call('GET', `/topics/later/messages/${old.messageId}`)).status, 404);
    // earlier-due first: once the later one is here, the old one had its turn
    const got = await waitFor('the new topic’s delayed message', async () => {
      const messages = await a.receive('later', 'g1');
      return messages.length > 0 ? messages : null;
    });
    t.same(
      got.map((m) => m.messageId),
      [control.messageId],
      'only the new topic’s message',
    );
    t.same(await a.receive('later', 'g1'), []);
    t.equal(a.wharf.broker.scheduler!.dispatched, 1, 'the old one was dropped, not dispatched');
    t.equal((await a.call('DELETE', `/topics/later/messages/${old.messageId}`)).status, 404);
  },
);

t.test('the drop of a deleted topic’s schedules survives a restart and a rebuild', async (t) => {
  const { a, restartWithoutWheel } = await restartableNode(t, 'wharf-delay-drop-');
  await a.call('PUT', '/topics/later', { messageType: 'DELAY' });
  const due = Date.now() + 2_500;
  t.equal((await a.publish('later', [{ body: 'old', deliverAt: due }])).status, 200);
  t.equal((await a.call('DELETE', '/topics/later')).status, 204);
  t.equal((await a.call('PUT', '/topics/later', { messageType: 'DELAY' })).status, 201);
  await a.call('PUT', '/groups/g1', {});
  t.same(await a.receive('later', 'g1'), []);
  // the wheel is gone too: the restarted broker rebuilds it from its schedule records
  const { second, b } = await restartWithoutWheel();
  const fresh = await b.publish('later', [{ body: 'new', deliverAt: due + 100 }]);
  const [control] = fresh.body.messages as { messageId: string }[];
  const got = await waitFor(
    'the new topic’s delayed message',
    async () => {
      const messages = await b.receive('later', 'g1');
      return messages.length > 0 ? messages : null;
    },
    { timeoutMs: 20_000 },
  );
  t.same(
    got.map((m) => m.body),
    ['new'],
  );
  t.equal(got[0].messageId, control.messageId);
  t.same(await b.receive('later', 'g1'), []);
  t.equal(second.broker.scheduler!.dispatched, 1, 'only the new one was dispatched');
});
