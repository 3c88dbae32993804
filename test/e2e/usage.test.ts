// Usage metering through signed HTTP: counts per instance and hour, flushed to Redis, readable
// by the tenant (its instance) and by the operator (every instance of a tenant).
import t from 'tap';
import { mqClient } from '../helpers/mq-http-sdk.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  adminFetch,
  firstKey,
  instanceCaller,
  json,
  provisionTenant,
  signedFetch,
  startWharf,
  tenantCaller,
} from '../helpers/wharf.js';

async function traffic(wharf: Awaited<ReturnType<typeof startWharf>>) {
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
  await call('PUT', '/groups/billing', {});
  await call('POST', '/topics/orders/messages', {
    messages: [{ body: 'abc' }, { body: 'defgh' }, { body: 'ij' }],
  });
  let delivered: string[] = [];
  while (delivered.length < 3) {
    const got = await json(
      await call('POST', '/topics/orders/groups/billing/receive', {
        maxMessages: 10,
        waitSeconds: 1,
      }),
    );
    delivered = [
      ...delivered,
      ...got.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
    ];
  }
  await call('POST', '/topics/orders/groups/billing/ack', { receiptHandles: delivered });
  await call('GET', '/topics/orders/stats');
  return { tenant, call };
}

t.test('usage: counted, flushed, read by the tenant and the operator', async (t) => {
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 100 } });
  const { tenant, call } = await traffic(wharf);
  // the ack's own request is counted when its answer is sent, after its acks: wait for both
  const bucket = await waitFor('the acks and every request in the usage', async () => {
    const body = await json(await call('GET', '/usage'));
    const b = body.buckets[0];
    return b?.messagesAcked === 3 && b.apiCallsConsume >= 2 && b.requests >= 6 ? b : null;
  });
  t.match(bucket, {
    instanceId: tenant.instanceId,
    messagesPublished: 3,
    messagesDelivered: 3,
    messagesAcked: 3,
    apiCallsPublish: 1,
    apiCallsManage: 2,
    apiCallsQuery: Number,
  });
  t.ok(bucket.bytesPublished >= 10, 'bytes published');
  t.equal(bucket.bytesDelivered, 10, 'bytes delivered: the bodies');
  t.ok(bucket.apiCallsConsume >= 2);
  t.ok(bucket.requests >= 6);
  t.equal(bucket.hour % 3_600_000, 0, 'an hour bucket');

  const admin = await json(
    await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenant.tenantId}/usage`),
  );
  t.match(admin, {
    tenantId: tenant.tenantId,
    buckets: [{ instanceId: tenant.instanceId, messagesAcked: 3 }],
  });

  const empty = await json(await call('GET', `/usage?from=0&to=${3_600_000 * 2}`));
  t.same(empty.buckets, [], 'no usage in 1970');
  t.equal(
    (await call('GET', `/usage?from=0&to=${3_600_000 * 24 * 40}`)).status,
    400,
    'over 31 days',
  );
  t.equal((await call('GET', '/usage?from=10&to=5')).status, 400);
  // not numbers in digits: refused, not read as Infinity (an endless range of hours)
  for (const range of ['to=Infinity', 'from=-Infinity', 'from=1e3', 'to=0x10']) {
    t.equal((await call('GET', `/usage?${range}`)).status, 400, range);
  }
  // a 31-day month, from its first hour to the next month's first (744 hours, 745 buckets)
  const october = Date.UTC(2026, 9, 1);
  const november = Date.UTC(2026, 10, 1);
  t.equal((await call('GET', `/usage?from=${october}&to=${november}`)).status, 200, '744 hours');
  t.equal((await call('GET', `/usage?from=${october}&to=${november + 1}`)).status, 400, 'past it');
  t.equal((await adminFetch(wharf, 'GET', '/admin/v1/tenants/t-nope/usage')).status, 404);
});

t.test('a graceful close flushes what the timer has not', async (t) => {
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 10_000 } });
  const { tenant } = await traffic(wharf);
  await wharf.app.close();
  const hour = Math.floor(Date.now() / 3_600_000);
  const keys = [hour, hour - 1].map((h) =>
    wharf.meta.keys.usage(tenant.tenantId, tenant.instanceId, h),
  );
  const fields = await Promise.all(keys.map((k) => wharf.meta.redis.hgetall(k)));
  const acked = fields.reduce((sum, f) => sum + Number(f.messagesAcked ?? 0), 0);
  t.equal(acked, 3, 'flushed at close');
  t.ok(
    (await wharf.meta.redis.pttl(keys[0])) > 300 * 24 * 3_600_000 ||
      fields[0].messagesAcked === undefined,
    'expires in about 400 days',
  );
});

t.test('requests naming an instance the tenant does not have leave no usage', async (t) => {
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 50 } });
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  const other = await provisionTenant(wharf);
  const key = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const named = (instanceId: string) =>
    signedFetch(wharf.url, { method: 'GET', path: `/v1/instances/${instanceId}/topics`, ...key });
  t.equal((await named('x'.repeat(300))).status, 404, 'an over-long id');
  t.equal((await named('MQ_INST_AAAAAAAAAAAAAAAAAAAA')).status, 404, 'no such instance');
  t.equal((await named(other.instanceId)).status, 404, 'another tenant’s');
  // then a request of its own, refused (no such topic) and counted: flushed with or after the others
  t.equal((await call('GET', '/topics/nope')).status, 404);
  const usage = await waitFor('the tenant’s own request in the usage', async () => {
    const body = await json(
      await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenant.tenantId}/usage`),
    );
    return body.buckets.some((b: { requests: number }) => b.requests >= 1) ? body : null;
  });
  t.same(
    usage.buckets.map((b: { instanceId: string }) => b.instanceId),
    [tenant.instanceId],
    'only its own instance has usage',
  );
  const stray = await wharf.meta.redis.keys(`*${tenant.tenantId}*:usage:*`);
  t.ok(
    stray.every((k) => k.includes(`:${tenant.instanceId}:`)),
    `no usage keys for other ids (${stray.join(', ')})`,
  );
});

t.test('a refused call counts whether or not its instance was resolved lately', async (t) => {
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 50 } });
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  await waitFor(
    'the instance out of the metadata cache',
    () => wharf.meta.cachedInstanceExists(tenant.tenantId, tenant.instanceId) !== true,
  );
  // refused by the schema before any handler resolves the instance
  for (let i = 0; i < 3; i++)
    t.equal((await call('POST', '/topics/orders/messages', { messages: 'nope' })).status, 400);
  const bucket = await waitFor('the refused publishes in the usage', async () => {
    const b = (await json(await call('GET', '/usage'))).buckets[0];
    return b?.apiCallsPublish === 3 ? b : null;
  });
  t.equal(bucket.apiCallsPublish, 3, 'each refused publish once');
});

t.test('usage outlives its instance and its tenant: the operator still reads it', async (t) => {
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 50 } });
  const { tenant, call } = await traffic(wharf);
  const usageOf = async (tenantId: string) =>
    adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenantId}/usage`);
  const published = (body: { buckets: { instanceId: string; messagesPublished: number }[] }) =>
    body.buckets
      .filter((b) => b.instanceId === tenant.instanceId)
      .reduce((sum, b) => sum + b.messagesPublished, 0);
  await waitFor('the publishes in the usage', async () =>
    published(await json(await usageOf(tenant.tenantId))) === 3 ? true : null,
  );

  t.equal((await call('DELETE', '')).status, 204, 'the instance is deleted');
  const afterInstance = await usageOf(tenant.tenantId);
  t.equal(afterInstance.status, 200);
  t.equal(published(await json(afterInstance)), 3, 'the deleted instance’s usage is listed');

  t.equal((await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`)).status, 204);
  const afterTenant = await usageOf(tenant.tenantId);
  t.equal(afterTenant.status, 200, 'a deleted tenant’s usage is readable (bills come after)');
  const body = await json(afterTenant);
  t.equal(body.tenantId, tenant.tenantId);
  t.equal(published(body), 3, 'with its deleted instance’s buckets');
  t.equal(
    (await usageOf('ten-aaaaaaaaaaaaaaaaaaaa')).status,
    404,
    'a tenant that never had usage nor a record is still TenantNotFound',
  );
});

t.test('a tenant deleted right after its calls: its usage is readable at once', async (t) => {
  // the default flush interval (10 s): the deleting gateway writes its counts before it answers
  const wharf = await startWharf(t);
  const { tenant } = await traffic(wharf);
  t.equal((await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`)).status, 204);
  const usage = await adminFetch(wharf, 'GET', `/admin/v1/tenants/${tenant.tenantId}/usage`);
  t.equal(usage.status, 200, 'not 404 until the next flush');
  const body = await json(usage);
  t.match(body.buckets, [{ instanceId: tenant.instanceId, messagesPublished: 3 }]);
});

t.test('MQ HTTP calls and streaming receives count as the /v1 calls they match', async (t) => {
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 100 } });
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  // the SDK names the instance in the query (?ns=), not the path
  const client = mqClient(wharf, tenant);
  await client.getProducer(tenant.instanceId, 'orders').publishMessage('from the sdk');
  const consumer = client.getConsumer(tenant.instanceId, 'orders', 'billing');
  const got = await consumer.consumeMessage(16, 5);
  await consumer.ackMessage(got.body.map((m) => m.ReceiptHandle));
  // a streaming receive is a receive
  const stream = await call('POST', '/topics/orders/groups/billing/receive-stream', {
    durationSeconds: 1,
  });
  t.match(await stream.text(), /"end":"DURATION"/);
  const bucket = await waitFor('every call in the usage', async () => {
    const body = await json(await call('GET', '/usage'));
    const b = body.buckets[0];
    return b?.apiCallsConsume === 3 && b.apiCallsPublish === 1 ? b : null;
  });
  t.match(bucket, {
    messagesPublished: 1,
    messagesDelivered: 1,
    messagesAcked: 1,
    apiCallsManage: 2,
  });
  t.ok(bucket.requests >= 6, 'the requests too');
});

t.test(
  'a publish answered as a duplicate (its dedupId stored already) publishes nothing',
  async (t) => {
    const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 100 } });
    const tenant = await provisionTenant(wharf);
    const call = tenantCaller(wharf, tenant);
    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    const publish = async () =>
      json(
        await call('POST', '/topics/orders/messages', {
          messages: [
            { body: 'abcd', dedupId: 'order-1' },
            { body: 'efghij', dedupId: 'order-2' },
          ],
        }),
      );
    const first = await publish();
    t.notOk(
      first.messages.some((m: { duplicate?: boolean }) => m.duplicate),
      'both stored',
    );
    const again = await publish(); // a client retrying after a timeout
    t.ok(
      again.messages.every((m: { duplicate?: boolean }) => m.duplicate === true),
      'both duplicates',
    );
    const bucket = await waitFor('both publish calls in the usage', async () => {
      const body = await json(await call('GET', '/usage'));
      const b = body.buckets[0];
      return b?.apiCallsPublish === 2 ? b : null;
    });
    t.equal(bucket.messagesPublished, 2, 'the two stored messages, not four');
    t.equal(bucket.bytesPublished, 10, 'their bodies once');
    const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
    t.match(
      metrics,
      new RegExp(`wharf_messages_published_total\\{tenant="${tenant.tenantId}"\\} 2\\b`),
      '/metrics too',
    );
  },
);

t.test('a call the client hangs up on still counts, in usage and in /metrics (499)', async (t) => {
  // a short metadata cache: the client leaves after the instance's entry has expired
  const wharf = await startWharf(t, { config: { usageFlushIntervalMs: 100 }, cacheTtlMs: 200 });
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  const hangUp = instanceCaller(wharf, tenant);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  // a long poll and a stream the client leaves before they answer
  for (const [path, body] of [
    ['receive', { waitSeconds: 20 }],
    ['receive-stream', { durationSeconds: 20 }],
  ] as const) {
    const abort = new AbortController();
    const pending = hangUp(
      firstKey(tenant),
      'POST',
      `/topics/orders/groups/billing/${path}`,
      body,
      abort.signal,
    );
    // the stream answers its head at once; the long poll parks
    if (path === 'receive-stream') await pending;
    else await waitFor('the poll to park', () => wharf.broker.stats().parkedReceives > 0);
    await waitFor(
      'the cached instance to expire',
      () => wharf.meta.cachedInstanceExists(tenant.tenantId, tenant.instanceId) !== true,
    );
    abort.abort();
    await pending.then((res) => res.body?.cancel()).catch(() => undefined);
  }
  const bucket = await waitFor('both hung-up calls in the usage', async () => {
    const b = (await json(await call('GET', '/usage'))).buckets[0];
    return b?.apiCallsConsume === 2 ? b : null;
  });
  t.equal(bucket.apiCallsManage, 2, 'the two creates, nothing else');
  const exposition = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  for (const route of ['receive', 'receive-stream']) {
    t.match(
      exposition,
      new RegExp(
        `wharf_http_requests_total\\{method="POST",route="[^"]*/groups/:group/${route}",status="499"\\} 1`,
      ),
      `${route}: 499 in the request counter`,
    );
  }
});
