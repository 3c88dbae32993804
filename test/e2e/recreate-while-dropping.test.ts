// A topic or group deleted while a cluster broker was down leaves that broker a pending drop
// (meta/pending-drops.ts). Until the broker has applied it, creating the name again is refused
// with 503 Unavailable naming the broker: created now, the late drop would delete the new topic's
// messages (or the new group's cursors) on that broker. Once applied, the name is free; a
// name-index field whose drop is gone (a broker that crashed between the two deletions) frees it.
import t from 'tap';
import { RedisPendingDrops, RedisPendingDropSink } from '../../src/meta/index.js';
import type { PendingDrop } from '../../src/model/index.js';
import { json, provisionTenant, startWharf, tenantCaller } from '../helpers/wharf.js';

t.test('a name is created again only once every broker applied its drop', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  const { redis, keys } = wharf.meta;
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/audit', {})).status, 201);
  const topic = await wharf.meta.topic(tenant.tenantId, tenant.instanceId, 'orders');
  const group = await wharf.meta.group(tenant.tenantId, tenant.instanceId, 'audit');
  // both deleted while broker 7 was down: the gateway left it their drops
  t.equal((await call('DELETE', '/topics/orders')).status, 204);
  t.equal((await call('DELETE', '/groups/audit')).status, 204);
  const sink = new RedisPendingDropSink(redis, keys);
  const topicDrop: PendingDrop = { kind: 'topic', topic: topic!, dropId: 'd1', droppedAtMs: 1 };
  const groupDrop: PendingDrop = { kind: 'group', group: group!, dropId: 'd2', droppedAtMs: 1 };
  await sink.add(7, topicDrop);
  await sink.add(7, groupDrop);

  for (const [path, body] of [
    ['/topics/orders', { messageType: 'NORMAL' }],
    ['/groups/audit', {}],
  ] as const) {
    const refused = await call('PUT', path, body);
    t.equal(refused.status, 503, `${path} refused while broker 7 has to drop the old one`);
    t.ok(Number(refused.headers.get('retry-after')) > 0, 'with retry-after');
    const { error } = await json(refused);
    t.equal(error.code, 'Unavailable');
    t.match(error.message, /broker 7/);
  }
  // another name, or the same name in another kind's namespace, is not held up
  t.equal((await call('PUT', '/topics/payments', { messageType: 'NORMAL' })).status, 201);

  // broker 7 is back and applies the topic's drop: the topic's name is free, the group's not yet
  const broker7 = new RedisPendingDrops(redis, keys, 7);
  await broker7.done([topicDrop]);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/audit', {})).status, 503);

  // a broker that deleted the drop and crashed before its name field: the field is stale
  await redis.hdel(keys.pendingDrops(7), 'd2');
  t.equal((await call('PUT', '/groups/audit', {})).status, 201);
  t.equal(await redis.hlen(keys.droppingNames(tenant.tenantId)), 0, 'the stale field is gone');

  // a gateway between writing a drop's name and the drop itself: a young field holds the name
  await redis.hset(
    keys.droppingNames(tenant.tenantId),
    '7/d3',
    `${Date.now()} topic ${tenant.instanceId}/fresh`,
  );
  t.equal((await call('PUT', '/topics/fresh', { messageType: 'NORMAL' })).status, 503);
});
