import t from 'tap';
import type { BrokerClient } from '../../src/cluster/index.js';
import type { GroupDescriptor, TopicDescriptor } from '../../src/model/index.js';
import {
  adminFetch,
  json,
  provisionTenant,
  signedFetch,
  startWharf,
  tenantCaller,
} from '../helpers/wharf.js';

t.test('operator plane: tenants and access keys', async (t) => {
  const wharf = await startWharf(t);
  const created = await adminFetch(wharf, 'POST', '/admin/v1/tenants', {
    name: 'acme',
    quotas: { maxTopics: 5 },
  });
  t.equal(created.status, 201);
  const tenant = (await json(created)) as { tenantId: string; quotas: Record<string, number> };
  t.match(tenant, { name: 'acme', status: 'active', quotas: { maxTopics: 5, maxGroups: 1000 } });
  t.equal((await adminFetch(wharf, 'POST', '/admin/v1/tenants', { name: 'acme' })).status, 409);

  const list = (await (await adminFetch(wharf, 'GET', '/admin/v1/tenants')).json()) as {
    tenants: { tenantId: string }[];
  };
  t.same(
    list.tenants.map((x) => x.tenantId),
    [tenant.tenantId],
  );
  t.equal((await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenant.tenantId}`)).status, 200);
  t.equal(
    (await adminFetch(wharf, 'GET', '/admin/v1/tenants/ten-aaaaaaaaaaaaaaaaaaaa')).status,
    404,
  );
  t.equal((await adminFetch(wharf, 'GET', '/admin/v1/tenants/not-an-id')).status, 404);

  const patched = await adminFetch(wharf, 'PATCH', `/admin/v1/tenants/${tenant.tenantId}`, {
    quotas: { maxGroups: 7 },
  });
  t.match(await patched.json(), { quotas: { maxTopics: 5, maxGroups: 7 } });
  t.equal(
    (await adminFetch(wharf, 'PATCH', '/admin/v1/tenants/ten-aaaaaaaaaaaaaaaaaaaa', {})).status,
    404,
  );

  const key = await adminFetch(wharf, 'POST', `/admin/v1/tenants/${tenant.tenantId}/access-keys`, {
    description: 'ci',
  });
  t.equal(key.status, 201);
  const keyBody = (await json(key)) as { accessKeyId: string; accessKeySecret: string };
  t.match(keyBody, {
    accessKeyId: /^WK[A-Z2-7]{18}$/,
    accessKeySecret: /^[A-Za-z0-9_-]{40}$/,
    permissions: [{ instance: '*', actions: ['manage', 'publish', 'consume', 'query'] }],
  });
  const keys = await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenant.tenantId}/access-keys`);
  const keysText = await keys.text();
  t.notMatch(keysText, keyBody.accessKeySecret, 'the secret is never listed');
  t.match(JSON.parse(keysText), {
    accessKeys: [{ accessKeyId: keyBody.accessKeyId, description: 'ci' }],
  });
  t.equal(
    (await adminFetch(wharf, 'POST', '/admin/v1/tenants/ten-aaaaaaaaaaaaaaaaaaaa/access-keys', {}))
      .status,
    404,
  );
  t.equal(
    (await adminFetch(wharf, 'GET', '/admin/v1/tenants/ten-aaaaaaaaaaaaaaaaaaaa/access-keys'))
      .status,
    404,
  );

  // the secret is sealed at rest
  const raw = await wharf.meta.redis.hgetall(wharf.meta.keys.accessKeys(tenant.tenantId));
  t.notMatch(JSON.stringify(raw), keyBody.accessKeySecret);
  t.match(JSON.stringify(raw), /sealedSecret/);

  t.equal((await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`)).status, 204);
  t.equal((await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`)).status, 404);
  t.same(await wharf.meta.redis.keys(`wharf:{${tenant.tenantId}}*`), [], 'nothing left in Redis');
});

function recordingBroker(base: BrokerClient) {
  const dropped: string[] = [];
  const brokers: BrokerClient = Object.assign(Object.create(base) as BrokerClient, {
    dropTopic: (topic: TopicDescriptor) => {
      dropped.push(`topic:${topic.topic}`);
      return Promise.resolve();
    },
    dropGroup: (group: GroupDescriptor) => {
      dropped.push(`group:${group.group}`);
      return Promise.reject(new Error('broker down'));
    },
    health: () => base.health(),
  });
  return { brokers, dropped };
}

t.test('tenant plane: instances, topics, groups', async (t) => {
  const { Broker } = await import('../../src/broker/index.js');
  const shell = await Broker.open({ dataDir: t.testdir(), brokerId: 0, macKey: Buffer.alloc(32) });
  const { brokers, dropped } = recordingBroker(shell);
  const wharf = await startWharf(t, { brokers });
  const tenant = await provisionTenant(wharf, { quotas: { maxTopics: 3, maxGroups: 2 } });
  const other = await provisionTenant(wharf);
  const as = (p: typeof tenant) => ({ ak: p.accessKeyId, sk: p.accessKeySecret });
  const i = `/v1/instances/${tenant.instanceId}`;

  t.test('instances', async (t) => {
    const dup = await signedFetch(wharf.url, {
      method: 'POST',
      path: '/v1/instances',
      body: { name: 'default' },
      ...as(tenant),
    });
    t.equal(dup.status, 409);
    const list = await signedFetch(wharf.url, { path: '/v1/instances', ...as(tenant) });
    t.match(await list.json(), { instances: [{ instanceId: tenant.instanceId, name: 'default' }] });
    const foreign = await signedFetch(wharf.url, { path: i, ...as(other) });
    t.equal(foreign.status, 404, 'another tenant’s instance is a missing one');
    t.equal((await json(foreign)).error.code, 'InstanceNotFound');
    const malformed = await signedFetch(wharf.url, { path: '/v1/instances/nope', ...as(tenant) });
    t.equal(malformed.status, 404);
  });

  t.test('topics: idempotent PUT, type mismatch, growth, quota, delete', async (t) => {
    const put = (name: string, body: object, who = tenant) =>
      signedFetch(wharf.url, { method: 'PUT', path: `${i}/topics/${name}`, body, ...as(who) });
    const created = await put('orders', { messageType: 'NORMAL' });
    t.equal(created.status, 201);
    const topic = await json(created);
    t.match(topic, {
      topic: 'orders',
      messageType: 'NORMAL',
      queueCount: 8,
      retentionHours: 72,
      dedupWindowSeconds: 600,
    });
    const same = await put('orders', { messageType: 'NORMAL' });
    t.equal(same.status, 200);
    t.same(await same.json(), topic);
    const mismatch = await put('orders', { messageType: 'FIFO' });
    t.equal(mismatch.status, 409);
    t.equal((await json(mismatch)).error.code, 'MessageTypeMismatch');
    const grown = await put('orders', {
      messageType: 'NORMAL',
      queueCount: 16,
      retentionHours: 24,
    });
    t.equal(grown.status, 200);
    t.match(await grown.json(), { queueCount: 16, retentionHours: 24, createdAt: topic.createdAt });
    const shrink = await put('orders', { messageType: 'NORMAL', queueCount: 2 });
    t.equal(shrink.status, 409);
    t.equal((await json(shrink)).error.code, 'Conflict');
    const window = await put('w', {
      messageType: 'NORMAL',
      retentionHours: 1,
      dedupWindowSeconds: 7200,
    });
    t.equal(window.status, 400);
    t.equal((await put('t2', { messageType: 'DELAY' })).status, 201);
    t.equal((await put('t3', { messageType: 'TRANSACTION' })).status, 201);
    const over = await put('t4', { messageType: 'NORMAL' });
    t.equal(over.status, 403);
    t.equal((await json(over)).error.code, 'QuotaExceeded');
    const foreign = await put('x', { messageType: 'NORMAL' }, other);
    t.equal(foreign.status, 404);

    const get = await signedFetch(wharf.url, { path: `${i}/topics/orders`, ...as(tenant) });
    t.equal(get.status, 200);
    const missing = await signedFetch(wharf.url, { path: `${i}/topics/nope`, ...as(tenant) });
    t.equal((await json(missing)).error.code, 'TopicNotFound');
    const del = await signedFetch(wharf.url, {
      method: 'DELETE',
      path: `${i}/topics/t3`,
      ...as(tenant),
    });
    t.equal(del.status, 204);
    t.ok(dropped.includes('topic:t3'), 'the broker is told');
    const delAgain = await signedFetch(wharf.url, {
      method: 'DELETE',
      path: `${i}/topics/t3`,
      ...as(tenant),
    });
    t.equal(delAgain.status, 404);
    t.equal((await put('t4', { messageType: 'NORMAL' })).status, 201, 'the count was given back');
    const list = await signedFetch(wharf.url, { path: `${i}/topics`, ...as(tenant) });
    t.same(
      ((await json(list)) as { topics: { topic: string }[] }).topics.map((x) => x.topic),
      ['orders', 't2', 't4'],
    );
  });

  t.test('groups', async (t) => {
    const put = (name: string, body: object) =>
      signedFetch(wharf.url, { method: 'PUT', path: `${i}/groups/${name}`, body, ...as(tenant) });
    const created = await put('g1', {});
    t.equal(created.status, 201);
    const group = await json(created);
    t.match(group, {
      group: 'g1',
      deliveryMode: 'CLUSTERING',
      maxDeliveryAttempts: 17,
      invisibleSeconds: 300,
    });
    t.notOk('retryPolicy' in group);
    t.equal((await put('g1', {})).status, 200);
    const updated = await put('g1', {
      maxDeliveryAttempts: 3,
      retryPolicy: { exponential: { initialSeconds: 1, multiplier: 2, maxSeconds: 60 } },
    });
    t.equal(updated.status, 200);
    t.match(await updated.json(), {
      maxDeliveryAttempts: 3,
      retryPolicy: { exponential: { initialSeconds: 1, multiplier: 2, maxSeconds: 60 } },
      createdAt: group.createdAt,
    });
    t.equal((await put('g1', { deliveryMode: 'BROADCASTING' })).status, 409);
    t.equal(
      (
        await put('g2', {
          retryPolicy: { exponential: { initialSeconds: 10, multiplier: 2, maxSeconds: 5 } },
        })
      ).status,
      400,
    );
    t.equal((await put('g2', { retryPolicy: { backoffSeconds: [1, 2, 3] } })).status, 201);
    t.equal((await put('g3', {})).status, 403, 'maxGroups');
    const list = await signedFetch(wharf.url, { path: `${i}/groups`, ...as(tenant) });
    t.equal(((await json(list)) as { groups: unknown[] }).groups.length, 2);
    t.equal((await signedFetch(wharf.url, { path: `${i}/groups/g2`, ...as(tenant) })).status, 200);
    t.equal((await signedFetch(wharf.url, { path: `${i}/groups/zz`, ...as(tenant) })).status, 404);
    const del = await signedFetch(wharf.url, {
      method: 'DELETE',
      path: `${i}/groups/g2`,
      ...as(tenant),
    });
    t.equal(del.status, 204, 'a failed broker drop is logged, not answered');
    t.equal(
      (await signedFetch(wharf.url, { method: 'DELETE', path: `${i}/groups/g2`, ...as(tenant) }))
        .status,
      204,
      'a drop neither taken nor left for the broker is tried again by the next DELETE',
    );
    const again = await put('g2', {});
    t.equal(again.status, 503, 'and the name is not created again before it is dropped');
    t.equal((await json(again)).error.code, 'Unavailable');
  });

  t.test('permissions per instance', async (t) => {
    const narrow = await adminFetch(
      wharf,
      'POST',
      `/admin/v1/tenants/${tenant.tenantId}/access-keys`,
      {
        permissions: [{ instance: tenant.instanceId, actions: ['publish'] }],
      },
    );
    const key = (await json(narrow)) as { accessKeyId: string; accessKeySecret: string };
    const who = { ak: key.accessKeyId, sk: key.accessKeySecret };
    t.equal(
      (await signedFetch(wharf.url, { path: `${i}/topics`, ...who })).status,
      200,
      'may read',
    );
    const put = await signedFetch(wharf.url, {
      method: 'PUT',
      path: `${i}/topics/nope`,
      body: { messageType: 'NORMAL' },
      ...who,
    });
    t.equal((await json(put)).error.code, 'AccessDenied');
    const create = await signedFetch(wharf.url, {
      method: 'POST',
      path: '/v1/instances',
      body: { name: 'x' },
      ...who,
    });
    t.equal((await json(create)).error.code, 'AccessDenied');
    const second = await signedFetch(wharf.url, {
      method: 'POST',
      path: '/v1/instances',
      body: { name: 'second' },
      ...as(tenant),
    });
    const { instanceId: secondId } = (await json(second)) as { instanceId: string };
    const seen = await signedFetch(wharf.url, { path: '/v1/instances', ...who });
    t.same(
      ((await json(seen)) as { instances: { instanceId: string }[] }).instances.map(
        (x) => x.instanceId,
      ),
      [tenant.instanceId],
      'lists only what it may see',
    );
    const hidden = await signedFetch(wharf.url, { path: `/v1/instances/${secondId}`, ...who });
    t.equal(hidden.status, 403);
  });

  t.test('deleting an instance drops its topics and groups', async (t) => {
    const del = await signedFetch(wharf.url, { method: 'DELETE', path: i, ...as(tenant) });
    t.equal(del.status, 204);
    t.ok(dropped.includes('topic:orders') && dropped.includes('group:g1'));
    t.equal((await signedFetch(wharf.url, { path: i, ...as(tenant) })).status, 404);
    t.equal(
      (await signedFetch(wharf.url, { method: 'DELETE', path: i, ...as(tenant) })).status,
      404,
    );
    const counts = await wharf.meta.redis.hgetall(wharf.meta.keys.counts(tenant.tenantId));
    t.same(counts, { topics: '0', groups: '0' });
  });
});

t.test(
  'a tenant deletion that failed midway is finished by deleting it again, data key included',
  async (t) => {
    const wharf = await startWharf(t);
    const tenant = await provisionTenant(wharf);
    const call = tenantCaller(wharf, tenant);
    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    t.equal(
      (await call('POST', '/topics/orders/messages', { messages: [{ body: 'secret' }] })).status,
      200,
    );
    const dataKey = wharf.meta.keys.dataKey(tenant.tenantId, tenant.instanceId);
    t.equal(await wharf.meta.redis.exists(dataKey), 1, 'the publish made the data key');
    // Redis fails the instance's deletion once (a command past its deadline)
    const instances = wharf.meta.instances as unknown as { delete: (...a: unknown[]) => unknown };
    const remove = instances.delete.bind(instances);
    instances.delete = () => {
      instances.delete = remove;
      return Promise.reject(new Error('Command timed out'));
    };
    const first = await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`);
    t.ok(first.status >= 500, `the first attempt fails (${first.status})`);
    t.equal((await call('GET', '/topics')).status, 403, 'its keys are revoked already');
    const again = await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`);
    t.equal(again.status, 204, 'deleting it again finishes');
    t.equal(await wharf.meta.redis.exists(dataKey), 0, 'the data key is gone: bodies shredded');
    t.equal((await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenant.tenantId}`)).status, 404);
    t.equal(
      (await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`)).status,
      404,
    );
  },
);

t.test("a FIFO topic's queueCount is fixed: a sharding key never overtakes itself", async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  t.equal((await call('PUT', '/topics/steps', { messageType: 'FIFO', queueCount: 1 })).status, 201);
  t.equal((await call('PUT', '/groups/g', {})).status, 201);
  const publish = async (body: string) =>
    t.equal(
      (
        await call('POST', '/topics/steps/messages', {
          messages: [{ body, shardingKey: 'order-42' }],
        })
      ).status,
      200,
    );
  const receive = async () =>
    (
      await json(
        await call('POST', '/topics/steps/groups/g/receive', { maxMessages: 8, waitSeconds: 0 }),
      )
    ).messages as { body: string; receiptHandle: string }[];
  await publish('step-1');
  const [first] = await receive();
  t.equal(first.body, 'step-1', 'in flight, not acked');
  for (const body of [{ messageType: 'FIFO' }, { messageType: 'FIFO', queueCount: 2 }]) {
    // a second queue would take order-42's next message while step-1 is unacked on the first
    const grow = await call('PUT', '/topics/steps', body);
    t.equal(grow.status, 409, JSON.stringify(body));
    t.match(await json(grow), { error: { code: 'Conflict', message: /queueCount is fixed/ } });
  }
  t.match(await json(await call('GET', '/topics/steps')), { queueCount: 1 });
  const same = await call('PUT', '/topics/steps', { messageType: 'FIFO', queueCount: 1 });
  t.equal(same.status, 200, 'the same settings are still unchanged');
  await publish('step-2');
  t.same(await receive(), [], 'step-2 waits behind step-1');
  await call('POST', '/topics/steps/groups/g/ack', { receiptHandles: [first.receiptHandle] });
  t.same(
    (await receive()).map((m) => m.body),
    ['step-2'],
  );
});
