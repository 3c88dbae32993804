import t from 'tap';
import { json, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';

t.test('alarms: create with a secret once, replace, list, delete, validation', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const i = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body?: unknown) =>
    signedFetch(wharf.url, {
      method,
      path: `${i}${path}`,
      ...(body === undefined ? {} : { body }),
      ...who,
    });
  await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
  await call('PUT', '/groups/billing', {});
  const spec = {
    metric: 'backlog',
    topic: 'orders',
    group: 'billing',
    threshold: 1000,
    forSeconds: 60,
    webhookUrl: 'https://hooks.example.com/wharf',
  };
  const created = await call('PUT', '/alarms/backlog-high', spec);
  t.equal(created.status, 201);
  const body = await json(created);
  t.match(body, { alarmId: 'backlog-high', ...spec, webhookSecret: /^[A-Za-z0-9_-]{32}$/ });
  const secret = await wharf.meta.alarms.webhookSecret(
    tenant.tenantId,
    tenant.instanceId,
    'backlog-high',
  );
  t.equal(secret, body.webhookSecret, 'sealed at rest, opened for the notifier');
  const raw = await wharf.meta.redis.hget(
    wharf.meta.keys.alarms(tenant.tenantId, tenant.instanceId),
    'backlog-high',
  );
  t.notMatch(raw!, body.webhookSecret);

  const replaced = await call('PUT', '/alarms/backlog-high', { ...spec, threshold: 5 });
  t.equal(replaced.status, 200);
  const replacedBody = await json(replaced);
  t.equal(replacedBody.threshold, 5);
  t.notOk('webhookSecret' in replacedBody, 'the secret is shown only at creation');
  t.equal(replacedBody.createdAt, body.createdAt);

  t.match(await json(await call('GET', '/alarms/backlog-high')), { threshold: 5 });
  t.equal((await json(await call('GET', '/alarms'))).alarms.length, 1);
  for (const [what, bad, status] of [
    ['group metric without group', { ...spec, group: undefined }, 400],
    ['unknown topic', { ...spec, topic: 'nope' }, 404],
    ['unknown group', { ...spec, group: 'nope' }, 404],
    ['bad url', { ...spec, webhookUrl: 'ftp://x' }, 400],
    ['negative threshold', { ...spec, threshold: -1 }, 400],
    ['topic metric with a group', { ...spec, metric: 'publishRate' }, 400],
  ] as const) {
    t.equal((await call('PUT', '/alarms/a2', bad)).status, status, what);
  }
  t.equal(
    (await call('PUT', '/alarms/rate', { ...spec, metric: 'publishRate', group: undefined }))
      .status,
    201,
  );
  // the webhook URL may hold a secret: a credential without manage does not read alarms
  const token = await json(
    await signedFetch(wharf.url, {
      method: 'POST',
      path: '/v1/tokens',
      body: {
        ttlSeconds: 300,
        permissions: [{ instance: tenant.instanceId, actions: ['publish', 'consume', 'query'] }],
      },
      ...who,
    }),
  );
  // nor its history, whose delivery errors name the webhook's host (and whether the id exists)
  for (const path of [
    '/alarms',
    '/alarms/backlog-high',
    '/alarms/backlog-high/history',
    '/alarms/nope/history',
  ]) {
    const read = await fetch(`${wharf.url}${i}${path}`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    t.equal((await json(read)).error.code, 'AccessDenied', `${path} without manage`);
  }
  t.equal((await call('DELETE', '/alarms/backlog-high')).status, 204);
  t.equal((await call('DELETE', '/alarms/backlog-high')).status, 404);
  t.equal((await json(await call('GET', '/alarms/backlog-high'))).error.code, 'AlarmNotFound');

  t.equal((await call('DELETE', '')).status, 204, 'deleting the instance');
  t.same(
    await wharf.meta.redis.hgetall(wharf.meta.keys.alarms(tenant.tenantId, tenant.instanceId)),
    {},
    'takes its alarms',
  );
});

t.test('an alarm PUT racing its instance’s deletion leaves no alarm behind', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const i = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body?: unknown) =>
    signedFetch(wharf.url, {
      method,
      path: `${i}${path}`,
      ...(body === undefined ? {} : { body }),
      ...who,
    });
  await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
  const alarmsKey = wharf.meta.keys.alarms(tenant.tenantId, tenant.instanceId);
  // the PUT stalls at its read of the alarm (past its checks of the instance and topic) until
  // the instance's deletion is over
  let deleted!: () => void;
  const deletionOver = new Promise<void>((resolve) => (deleted = resolve));
  let stalled!: () => void;
  const putStalled = new Promise<void>((resolve) => (stalled = resolve));
  const redis = wharf.meta.redis as unknown as { hget: (...args: unknown[]) => Promise<unknown> };
  const hget = redis.hget.bind(redis);
  redis.hget = async (...args: unknown[]) => {
    if (args[0] !== alarmsKey) return hget(...args);
    redis.hget = hget;
    stalled();
    await deletionOver;
    return hget(...args);
  };
  const put = call('PUT', '/alarms/rate', {
    metric: 'publishRate',
    topic: 'orders',
    threshold: 10,
    forSeconds: 0,
    webhookUrl: 'https://hooks.example.com/wharf',
  });
  await putStalled;
  t.equal((await call('DELETE', '')).status, 204, 'the instance is deleted');
  deleted();
  const answer = await put;
  t.equal(await wharf.meta.redis.exists(alarmsKey), 0, 'no alarms hash is left in Redis');
  t.equal(answer.status, 404, 'the PUT finds no instance');
  t.equal((await json(answer)).error?.code, 'InstanceNotFound');
});

t.test('an instance has at most 100 alarms, even under concurrent PUTs', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const i = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body?: unknown) =>
    signedFetch(wharf.url, {
      method,
      path: `${i}${path}`,
      ...(body === undefined ? {} : { body }),
      ...who,
    });
  await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
  const spec = {
    metric: 'publishRate',
    topic: 'orders',
    threshold: 10,
    forSeconds: 0,
    webhookUrl: 'https://hooks.example.com/wharf',
  };
  for (let n = 0; n < 97; n++) {
    const res = await call('PUT', `/alarms/a${n}`, spec);
    if (res.status !== 201) t.fail(`alarm ${n}: ${res.status} ${await res.text()}`);
  }
  // six creations at once for the last three places
  const racing = await Promise.all(
    Array.from({ length: 6 }, (_, n) => call('PUT', `/alarms/race${n}`, spec)),
  );
  t.same(
    racing.map((r) => r.status).sort(),
    [201, 201, 201, 403, 403, 403],
    'three created, three refused',
  );
  const refused = racing.find((r) => r.status === 403)!;
  t.equal((await json(refused)).error.code, 'QuotaExceeded');
  t.equal((await json(await call('GET', '/alarms'))).alarms.length, 100, '100 alarms');
  t.equal((await call('PUT', '/alarms/one-more', spec)).status, 403, 'the 101st is refused');
  t.equal(
    (await call('PUT', '/alarms/a0', { ...spec, threshold: 20 })).status,
    200,
    'replacing one is not a creation',
  );
  t.equal((await call('DELETE', '/alarms/a1')).status, 204);
  t.equal((await call('PUT', '/alarms/one-more', spec)).status, 201, 'a deletion frees a place');
});
