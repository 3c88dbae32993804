// A DELETE of a topic or group whose answer was lost after Redis ran it: its deadline passed while
// Redis stalled (the client got 503 and may retry), then Redis ran the delete, so the record is
// gone but no broker was told to drop the data. The next DELETE of the name (204, not 404) or a
// create of it finishes the drop first: the name created again never gets the deleted one's
// messages (stored or delayed) nor its cursors.
import t, { type Test } from 'tap';
import { json, provisionTenant, startWharf, tenantCaller } from '../helpers/wharf.js';
import { eventually } from '../helpers/eventually.js';

async function setup(t: Test) {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  /** What the DELETE's script does, run as Redis ran it after the gateway had given up. */
  const lostDelete = {
    topic: (name: string) => wharf.meta.deleteTopic(tenant.tenantId, tenant.instanceId, name),
    group: (name: string) => wharf.meta.deleteGroup(tenant.tenantId, tenant.instanceId, name),
  };
  const receiveBodies = async (topic: string, group: string): Promise<string[]> => {
    const res = await call('POST', `/topics/${topic}/groups/${group}/receive`, {
      maxMessages: 32,
    });
    if (res.status !== 200) throw new Error(`receive: ${res.status} ${await res.text()}`);
    return ((await json(res)).messages as { body: string }[]).map((m) => m.body);
  };
  /** A NORMAL topic `orders` whose group `billing` receives from it, holding one message. */
  const ordersWithOldMessage = async (t: Test) => {
    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    t.equal((await call('PUT', '/groups/billing', {})).status, 201);
    await receiveBodies('orders', 'billing');
    t.equal(
      (await call('POST', '/topics/orders/messages', { messages: [{ body: 'old' }] })).status,
      200,
    );
  };
  return { wharf, tenant, call, lostDelete, receiveBodies, ordersWithOldMessage };
}

t.test('a topic: a create after a lost delete answer does not get its messages', async (t) => {
  const { call, lostDelete, receiveBodies } = await setup(t);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'DELAY' })).status, 201);
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  await receiveBodies('orders', 'billing'); // the group starts on the topic
  const due = Date.now() + 1500;
  const published = await call('POST', '/topics/orders/messages', {
    messages: [{ body: 'old-1' }, { body: 'old-2' }, { body: 'old-delayed', deliverAt: due }],
  });
  t.equal(published.status, 200);
  t.not(await lostDelete.topic('orders'), null, 'the record deleted, no broker told');

  t.equal((await call('PUT', '/topics/orders', { messageType: 'DELAY' })).status, 201);
  t.equal(
    (await call('POST', '/topics/orders/messages', { messages: [{ body: 'new' }] })).status,
    200,
  );
  const got: string[] = [];
  await eventually('the new message, and the old delayed one’s time passed', async () => {
    got.push(...(await receiveBodies('orders', 'billing')));
    return got.includes('new') && Date.now() > due + 1000;
  });
  t.same(got, ['new'], 'nothing of the deleted topic');
});

t.test('a topic: the retried DELETE finishes it (204, not 404)', async (t) => {
  const { call, lostDelete, receiveBodies, ordersWithOldMessage } = await setup(t);
  await ordersWithOldMessage(t);
  await lostDelete.topic('orders');
  t.equal((await call('DELETE', '/topics/orders')).status, 204, 'the retry finishes the delete');
  t.equal((await call('DELETE', '/topics/orders')).status, 404, 'and then the name is unknown');
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.same(await receiveBodies('orders', 'billing'), [], 'nothing of the deleted topic');
});

t.test('a group: created again after a lost delete answer, it starts afresh', async (t) => {
  const { call, lostDelete, receiveBodies } = await setup(t);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  await receiveBodies('orders', 'billing');
  t.equal(
    (await call('POST', '/topics/orders/messages', { messages: [{ body: 'before' }] })).status,
    200,
  );
  await lostDelete.group('billing');
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  t.same(
    await receiveBodies('orders', 'billing'),
    [],
    'the new group starts at its creation, not on the old one’s backlog',
  );
});

t.test(
  'a name created again by a gateway that keeps no deleted records is not dropped',
  async (t) => {
    const { wharf, tenant, call, lostDelete, receiveBodies } = await setup(t);
    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    t.equal((await call('PUT', '/groups/billing', {})).status, 201);
    const deleted = await lostDelete.topic('orders');
    // a gateway of the earlier version creates the name again without finishing the delete (its
    // create script neither looks at nor forgets the deleted record)
    const { redis, keys } = wharf.meta;
    const field = `topic ${tenant.instanceId}/orders`;
    const deletedJson = await redis.hget(keys.deletedResources(tenant.tenantId), field);
    await wharf.meta.forgetDeleted('topic', tenant.tenantId, tenant.instanceId, 'orders');
    await wharf.meta.putTopic({ ...deleted!, createdAt: Date.now() + 1 });
    await redis.hset(keys.deletedResources(tenant.tenantId), field, deletedJson!);
    await receiveBodies('orders', 'billing');
    t.equal(
      (await call('POST', '/topics/orders/messages', { messages: [{ body: 'live' }] })).status,
      200,
    );
    // the same settings applied again (infrastructure as code) through this version's gateway
    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 200);
    t.same(await receiveBodies('orders', 'billing'), ['live'], 'the live topic keeps its messages');
    t.equal(
      await redis.hexists(keys.deletedResources(tenant.tenantId), field),
      0,
      'the deleted record is forgotten',
    );
  },
);

t.test(
  'a retried DELETE still dropping holds the name: a create meanwhile waits, its messages kept',
  async (t) => {
    const { wharf, call, lostDelete, receiveBodies, ordersWithOldMessage } = await setup(t);
    await ordersWithOldMessage(t);
    await lostDelete.topic('orders');
    // the first drop the broker is asked for is slow (a large topic, a busy disk): it has not
    // landed when the name is created again, on this gateway or another
    const broker = wharf.broker;
    const dropTopic = broker.dropTopic.bind(broker);
    let enter!: () => void;
    const entered = new Promise<void>((resolve) => (enter = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    t.teardown(() => release());
    let calls = 0;
    broker.dropTopic = async (topic) => {
      if (calls++ === 0) {
        enter();
        await released;
      }
      return dropTopic(topic);
    };
    const retried = call('DELETE', '/topics/orders');
    await entered;
    const create = await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
    t.equal(create.status, 503, 'the create waits for the drop');
    t.equal((await json(create)).error.code, 'Unavailable');
    t.ok(create.headers.get('retry-after'));
    release();
    t.equal((await retried).status, 204, 'the retried DELETE finishes the delete');

    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    t.equal(
      (await call('POST', '/topics/orders/messages', { messages: [{ body: 'new' }] })).status,
      200,
    );
    t.same(await receiveBodies('orders', 'billing'), ['new'], 'the new topic keeps its message');
  },
);

t.test('deleting the instance forgets its topics’ and groups’ deleted records', async (t) => {
  const { wharf, tenant, call, lostDelete } = await setup(t);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  await lostDelete.topic('orders');
  await lostDelete.group('billing');
  const { redis, keys } = wharf.meta;
  t.equal(await redis.hlen(keys.deletedResources(tenant.tenantId)), 2);
  t.equal((await call('DELETE', '')).status, 204, 'the instance deleted');
  t.equal(await redis.hlen(keys.deletedResources(tenant.tenantId)), 0, 'nothing left behind');
});
