import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { WharfError } from '../../src/errors.js';
import { FakeBroker } from '../helpers/fake-broker.js';
import { adminFetch, json, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';
import type { PublishMessage, ReceiveRequest, ReceivedMessage } from '../../src/model/index.js';

async function setup(t: Test, quotas = {}) {
  const fake = new FakeBroker();
  const wharf = await startWharf(t, { brokers: fake });
  const tenant = await provisionTenant(wharf, { quotas });
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const i = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body?: unknown, as = who) =>
    signedFetch(wharf.url, {
      method,
      path: `${i}${path}`,
      ...(body === undefined ? {} : { body }),
      ...as,
    });
  for (const [name, type] of [
    ['normal', 'NORMAL'],
    ['fifo', 'FIFO'],
    ['tx', 'TRANSACTION'],
    ['delay', 'DELAY'],
  ]) {
    t.equal((await call('PUT', `/topics/${name}`, { messageType: type })).status, 201);
  }
  t.equal((await call('PUT', '/groups/g', {})).status, 201);
  t.equal((await call('PUT', '/groups/b', { deliveryMode: 'BROADCASTING' })).status, 201);
  return { fake, wharf, tenant, who, call };
}

async function code(res: Response) {
  return ((await json(res)) as { error: { code: string } }).error.code;
}

t.test('publish: decoding, delay rules, sizes, quotas', async (t) => {
  const { fake, wharf, tenant, call } = await setup(t, {
    maxMessageBytes: 1000,
    publishPerSecond: 40,
  });
  const ok = await call('POST', '/topics/normal/messages', {
    messages: [
      {
        body: 'héllo',
        tag: 'TagA',
        keys: ['k1'],
        properties: { a: 'b' },
        shardingKey: 's',
        dedupId: 'd',
      },
      { body: Buffer.from([0, 1, 255]).toString('base64'), bodyEncoding: 'base64' },
      { body: 'later', delaySeconds: 30 },
      { body: 'past', deliverAt: 1 },
    ],
  });
  t.equal(ok.status, 200);
  t.same(await json(ok), {
    messages: [
      { messageId: 'msg-0', queueId: 0, bodyMd5: 'md5' },
      { messageId: 'msg-1', queueId: 1, bodyMd5: 'md5' },
      { messageId: 'msg-2', queueId: 2, bodyMd5: 'md5' },
      { messageId: 'msg-3', queueId: 3, bodyMd5: 'md5' },
    ],
  });
  const [topic, messages] = fake.last('publish') as [
    { tenantId: string; topic: string },
    PublishMessage[],
  ];
  t.match(topic, {
    tenantId: tenant.tenantId,
    topic: 'normal',
    messageType: 'NORMAL',
    dedupWindowMs: 600_000,
  });
  t.same(messages[0].body, Buffer.from('héllo'));
  t.match(messages[0], {
    tag: 'TagA',
    keys: ['k1'],
    properties: { a: 'b' },
    shardingKey: 's',
    dedupId: 'd',
  });
  t.same(messages[1].body, Buffer.from([0, 1, 255]));
  t.equal(messages[1].bodyEncoding, 'base64');
  t.ok(messages[2].deliverAtMs! > Date.now() + 25_000, 'delaySeconds becomes deliverAtMs');
  t.equal(messages[3].deliverAtMs, undefined, 'a past deliverAt means now');

  const refused: [string, object, number, string][] = [
    ['empty batch', { messages: [] }, 400, 'InvalidArgument'],
    [
      '33 messages',
      { messages: Array.from({ length: 33 }, () => ({ body: 'x' })) },
      400,
      'InvalidArgument',
    ],
    ['no body', { messages: [{}] }, 400, 'InvalidArgument'],
    ['body not a string', { messages: [{ body: 1 }] }, 400, 'InvalidArgument'],
    [
      'bad base64',
      { messages: [{ body: 'a$b=', bodyEncoding: 'base64' }] },
      400,
      'InvalidArgument',
    ],
    [
      'unpadded base64',
      { messages: [{ body: 'abc', bodyEncoding: 'base64' }] },
      400,
      'InvalidArgument',
    ],
    [
      'base64 with its unused bits set (not canonical: "YR==" would read as "a")',
      { messages: [{ body: 'YR==', bodyEncoding: 'base64' }] },
      400,
      'InvalidArgument',
    ],
    [
      'both delays',
      { messages: [{ body: 'x', delaySeconds: 1, deliverAt: Date.now() + 5000 }] },
      400,
      'InvalidArgument',
    ],
    [
      'over 40 days',
      { messages: [{ body: 'x', deliverAt: Date.now() + 41 * 86_400_000 }] },
      400,
      'InvalidArgument',
    ],
    ['tag with ||', { messages: [{ body: 'x', tag: 'a||b' }] }, 400, 'InvalidArgument'],
    [
      'property not a string',
      { messages: [{ body: 'x', properties: { a: 1 } }] },
      400,
      'InvalidArgument',
    ],
    [
      'over maxMessageBytes',
      { messages: [{ body: 'x'.repeat(990), properties: { name: 'value-long' } }] },
      413,
      'MessageTooLarge',
    ],
  ];
  for (const [what, body, status, expected] of refused) {
    const res = await call('POST', '/topics/normal/messages', body);
    t.equal(res.status, status, what);
    t.equal(await code(res), expected, what);
  }
  for (const topic of ['fifo', 'tx']) {
    const res = await call('POST', `/topics/${topic}/messages`, {
      messages: [{ body: 'x', delaySeconds: 5 }],
    });
    t.equal(await code(res), 'InvalidArgument', `delay on ${topic}`);
  }
  t.equal(
    (await call('POST', '/topics/delay/messages', { messages: [{ body: 'x', delaySeconds: 5 }] }))
      .status,
    200,
  );
  t.equal((await call('POST', '/topics/nope/messages', { messages: [{ body: 'x' }] })).status, 404);

  // 40 per second: 6 used above; 34 more pass, then 429 with retry-after
  t.equal(
    (
      await call('POST', '/topics/normal/messages', {
        messages: Array.from({ length: 32 }, () => ({ body: 'x' })),
      })
    ).status,
    200,
  );
  const throttled = await call('POST', '/topics/normal/messages', {
    messages: Array.from({ length: 32 }, () => ({ body: 'x' })),
  });
  t.equal(throttled.status, 429);
  t.equal(await code(throttled), 'Throttled');
  t.ok(Number(throttled.headers.get('retry-after')) >= 1);

  const metrics = await fetch(`${wharf.url}/metrics`, {
    headers: { authorization: `Bearer ${wharf.adminToken}` },
  });
  const exposition = await metrics.text();
  t.match(exposition, `wharf_messages_published_total{tenant="${tenant.tenantId}"}`);
  t.match(
    exposition,
    `wharf_throttled_total{tenant="${tenant.tenantId}",quota="publish"} 1`,
    'the refusal is counted',
  );
  // a deleted tenant's series leave the exposition (tenant churn would grow it for ever)
  t.equal(
    (
      await fetch(`${wharf.url}/admin/v1/tenants/${tenant.tenantId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${wharf.adminToken}` },
      })
    ).status,
    204,
  );
  const after = await (
    await fetch(`${wharf.url}/metrics`, {
      headers: { authorization: `Bearer ${wharf.adminToken}` },
    })
  ).text();
  t.notMatch(after, `tenant="${tenant.tenantId}"`, 'no series of the deleted tenant');
});

t.test('publish: the batch limit and the permission', async (t) => {
  const { call, wharf, tenant } = await setup(t);
  const big = 'x'.repeat(2_500_000);
  const res = await call('POST', '/topics/normal/messages', {
    messages: [{ body: big }, { body: big }],
  });
  t.equal(res.status, 413);
  t.match(((await json(res)) as { error: { message: string } }).error.message, /batch/);
  const key = await adminFetch(wharf, 'POST', `/admin/v1/tenants/${tenant.tenantId}/access-keys`, {
    permissions: [{ instance: tenant.instanceId, actions: ['consume'] }],
  });
  const consumer = (await json(key)) as { accessKeyId: string; accessKeySecret: string };
  const denied = await call(
    'POST',
    '/topics/normal/messages',
    { messages: [{ body: 'x' }] },
    {
      ak: consumer.accessKeyId,
      sk: consumer.accessKeySecret,
    },
  );
  t.equal(await code(denied), 'AccessDenied');
  const other = await provisionTenant(wharf);
  const foreign = await call(
    'POST',
    '/topics/normal/messages',
    { messages: [{ body: 'x' }] },
    {
      ak: other.accessKeyId,
      sk: other.accessKeySecret,
    },
  );
  t.equal(await code(foreign), 'InstanceNotFound', "another tenant's topic is a missing one");
});

t.test('receive: defaults, encoding, BROADCASTING, rate cap', async (t) => {
  const { fake, call } = await setup(t, { consumePerSecond: 20 });
  const two: ReceivedMessage[] = [
    {
      messageId: 'm1',
      receiptHandle: 'h1',
      body: Buffer.from([0xff, 0x00]),
      bodyEncoding: 'base64',
      tag: null,
      keys: [],
      properties: {},
      shardingKey: null,
      queueId: 0,
      queueOffset: 7,
      publishTime: 1,
      firstDeliveryTime: 2,
      deliveryAttempt: 1,
      nextVisibleTime: 3,
    },
    {
      messageId: 'm2',
      receiptHandle: 'h2',
      body: Buffer.from('text'),
      bodyEncoding: 'utf8',
      tag: 'A',
      keys: ['k'],
      properties: { p: 'q' },
      shardingKey: 's',
      queueId: 1,
      queueOffset: 0,
      publishTime: 1,
      firstDeliveryTime: 2,
      deliveryAttempt: 2,
      nextVisibleTime: 3,
    },
  ];
  fake.answers.receive = () => two;
  const res = await call('POST', '/topics/normal/groups/g/receive', {});
  t.equal(res.status, 200);
  const body = (await json(res)) as {
    messages: { body: string; tag: unknown; shardingKey: unknown }[];
  };
  t.equal(body.messages[0].body, '/wA=');
  t.equal(body.messages[0].tag, null);
  t.equal(body.messages[1].body, 'text');
  t.equal(body.messages[1].shardingKey, 's');
  const [, group, request, signal] = fake.last('receive') as [
    unknown,
    { group: string },
    ReceiveRequest,
    AbortSignal,
  ];
  t.equal(group.group, 'g');
  // the broker is asked for no more bodies than one answer carries
  t.same(request, { maxMessages: 16, waitMs: 0, tags: '*', maxBodyBytes: 16 * 1024 * 1024 });
  t.ok(signal instanceof AbortSignal);

  await call('POST', '/topics/normal/groups/g/receive', {
    maxMessages: 32,
    waitSeconds: 1,
    tags: 'A||B',
    invisibleSeconds: 60,
  });
  const capped = (fake.last('receive') as [unknown, unknown, ReceiveRequest])[2];
  t.match(capped, { waitMs: 1000, tags: 'A||B', invisibleMs: 60_000 });
  t.ok(capped.maxMessages >= 18 && capped.maxMessages <= 20, 'capped by the consume bucket');

  const noConsumer = await call('POST', '/topics/normal/groups/b/receive', {});
  t.equal(await code(noConsumer), 'InvalidArgument', 'BROADCASTING needs consumerId');
  t.equal(
    (await call('POST', '/topics/normal/groups/b/receive', { consumerId: 'c1' })).status,
    200,
  );
  t.equal((fake.last('receive') as [unknown, unknown, ReceiveRequest])[2].consumerId, 'c1');

  for (const [what, bad] of [
    ['maxMessages 33', { maxMessages: 33 }],
    ['waitSeconds 31', { waitSeconds: 31 }],
    ['tags A|B', { tags: 'A|B' }],
    ['invisibleSeconds 0', { invisibleSeconds: 0 }],
    ['waitSeconds as a string', { waitSeconds: '1' }],
  ] as const) {
    t.equal(
      await code(await call('POST', '/topics/normal/groups/g/receive', bad)),
      'InvalidArgument',
      what,
    );
  }
  t.equal(
    await code(await call('POST', '/topics/normal/groups/nope/receive', {})),
    'GroupNotFound',
  );

  // a receive that hands out more than the bucket holds puts it in debt: the next is throttled
  const many = fake.answers.receive;
  fake.answers.receive = async (...args) => {
    const two = await many(...args);
    return Array.from({ length: 20 }, () => two[1]);
  };
  t.equal((await call('POST', '/topics/normal/groups/g/receive', {})).status, 200);
  const throttled = await call('POST', '/topics/normal/groups/g/receive', {});
  t.equal(throttled.status, 429);
});

t.test(
  'receive: a client that goes away aborts the poll; closing answers parked polls',
  async (t) => {
    const { fake, wharf, tenant, who } = await setup(t);
    let parked: AbortSignal | undefined;
    fake.answers.receive = (_t, _g, _r, signal) =>
      new Promise((_resolve, reject) => {
        parked = signal;
        signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    const path = `/v1/instances/${tenant.instanceId}/topics/normal/groups/g/receive`;
    const aws4 = (await import('aws4')).default;
    const url = new URL(wharf.url);
    const body = '{"waitSeconds":30}';
    const signed = aws4.sign(
      {
        host: url.host,
        method: 'POST',
        path,
        service: 'mq',
        region: 'local',
        headers: { 'content-type': 'application/json' },
        body,
      },
      { accessKeyId: who.ak, secretAccessKey: who.sk },
    );
    const headers = signed.headers as Record<string, string>;
    delete headers.Host;
    delete headers['Content-Length'];
    const client = new AbortController();
    const pending = fetch(`${wharf.url}${path}`, {
      method: 'POST',
      headers,
      body,
      signal: client.signal,
    });
    while (parked === undefined) await new Promise((r) => setTimeout(r, 10));
    t.notOk(parked.aborted);
    client.abort();
    await t.rejects(pending);
    while (!parked.aborted) await new Promise((r) => setTimeout(r, 10));
    t.ok(parked.aborted, 'the broker sees the client go');

    parked = undefined;
    const second = signedFetch(wharf.url, {
      method: 'POST',
      path,
      body: { waitSeconds: 30 },
      ...who,
    });
    while (parked === undefined) await new Promise((r) => setTimeout(r, 10));
    // a connection that never sends a byte (a client pool's spare) does not hold the drain up
    const silent = connect(Number(url.port), url.hostname);
    t.teardown(() => silent.destroy());
    silent.on('error', () => undefined);
    const silentClosed = new Promise((resolve) => silent.once('close', resolve));
    await new Promise((resolve) => silent.once('connect', resolve));
    const closing = wharf.app.close();
    const res = await second;
    t.equal(res.status, 200);
    t.same(await json(res), { messages: [] }, 'a parked poll answers empty at shutdown');
    await silentClosed;
    t.pass('the silent connection was closed by the drain');
    await closing;
  },
);

t.test('ack, visibility, query, trace, reset, dead letters, stats', async (t) => {
  const { fake, call } = await setup(t);
  fake.answers.ack = (_t, _g, handles) =>
    handles.map((h, i) =>
      i === 0
        ? { receiptHandle: h, ok: true }
        : { receiptHandle: h, ok: false, code: 'ReceiptHandleExpired' },
    );
  const ack = await call('POST', '/topics/normal/groups/g/ack', { receiptHandles: ['a', 'b'] });
  t.same(await json(ack), {
    results: [
      { receiptHandle: 'a', ok: true },
      { receiptHandle: 'b', ok: false, code: 'ReceiptHandleExpired' },
    ],
  });
  t.equal(
    await code(await call('POST', '/topics/normal/groups/g/ack', { receiptHandles: [] })),
    'InvalidArgument',
  );
  t.equal(
    await code(
      await call('POST', '/topics/normal/groups/g/ack', {
        receiptHandles: Array.from({ length: 101 }, () => 'h'),
      }),
    ),
    'InvalidArgument',
  );
  const vis = await call('POST', '/topics/normal/groups/g/visibility', {
    receiptHandle: 'h',
    invisibleSeconds: 0,
  });
  t.same(await json(vis), { receiptHandle: 'h', nextVisibleTime: 1000 });
  t.equal(
    await code(
      await call('POST', '/topics/normal/groups/g/visibility', {
        receiptHandle: 'h',
        invisibleSeconds: 43201,
      }),
    ),
    'InvalidArgument',
  );

  const view = {
    messageId: 'm',
    topic: 'normal',
    queueId: 0,
    queueOffset: 1,
    body: Buffer.from('hi'),
    bodyEncoding: 'utf8' as const,
    tag: null,
    keys: [],
    properties: {},
    shardingKey: null,
    publishTime: 5,
    groups: [{ group: 'g', state: 'ACKED' as const, deliveryAttempt: 1 }],
  };
  fake.answers.getMessage = () => view;
  t.match(await json(await call('GET', '/topics/normal/messages/m')), {
    messageId: 'm',
    body: 'hi',
    groups: [{ state: 'ACKED' }],
  });
  fake.answers.getMessage = undefined;
  t.equal(await code(await call('GET', '/topics/normal/messages/zz')), 'MessageNotFound');
  fake.answers.queryByKey = () => [view];
  t.match(await json(await call('GET', '/topics/normal/messages?key=k1')), {
    messages: [{ body: 'hi' }],
  });
  t.same(fake.last('queryByKey')!.slice(1), ['k1', 32]);
  fake.answers.queryByTime = () => ({ messages: [view], nextCursor: 'c2' });
  t.match(
    await json(await call('GET', '/topics/normal/messages?from=10&to=20&limit=5&cursor=c1')),
    { nextCursor: 'c2' },
  );
  t.same(fake.last('queryByTime')![1], { fromMs: 10, toMs: 20, limit: 5, cursor: 'c1' });
  for (const q of [
    '',
    '?key=a&from=1',
    '?from=5&to=1',
    '?from=x',
    '?from=1&limit=101',
    '?from=1&limit=0',
    '?from=1.5',
    '?from=-1',
    '?from=1&limit=2.5',
    '?from=1&limit=ten',
    '?from=Infinity',
    '?from=1&to=-Infinity',
    '?from=1&limit=Infinity',
    '?from=0x10',
    '?from=1e3',
    '?from=1&limit=',
    '?from=1&limit=1&limit=2',
  ]) {
    t.equal(await code(await call('GET', `/topics/normal/messages${q}`)), 'InvalidArgument', q);
  }
  t.same(await json(await call('GET', '/topics/normal/messages/m/trace')), {
    events: [{ type: 'PUBLISHED', time: 1 }],
  });

  t.same(await json(await call('POST', '/topics/normal/groups/g/reset', { to: 'earliest' })), {
    topic: 'normal',
    group: 'g',
    to: 'earliest',
  });
  t.same(await json(await call('POST', '/topics/normal/groups/g/reset', { to: 12345 })), {
    topic: 'normal',
    group: 'g',
    to: 12345,
  });
  t.equal(
    await code(await call('POST', '/topics/normal/groups/g/reset', { to: 'middle' })),
    'InvalidArgument',
  );
  t.equal(
    await code(await call('POST', '/topics/normal/groups/g/reset', { to: '123' })),
    'InvalidArgument',
  );
  t.equal(
    await code(await call('POST', '/topics/normal/groups/g/reset', { to: 1e300 })),
    'InvalidArgument',
    'a time past any date',
  );

  fake.answers.deadLetters = () => ({
    messages: [{ ...view, deadLetteredAt: 9, deliveryAttempt: 17 }],
    nextCursor: 'n',
  });
  t.match(await json(await call('GET', '/groups/g/dead-letters?limit=10')), {
    messages: [{ body: 'hi', deadLetteredAt: 9 }],
    nextCursor: 'n',
  });
  t.same(fake.last('deadLetters')!.slice(1), [10, undefined]);
  t.same(await json(await call('POST', '/groups/g/dead-letters/resend', { messageIds: ['m'] })), {
    results: [{ messageId: 'm', ok: true }],
  });
  t.match(await json(await call('GET', '/topics/normal/stats')), {
    messagesIn: 1,
    queues: [{ queueId: 0 }],
  });
  t.match(await json(await call('GET', '/topics/normal/groups/g/stats')), {
    backlog: 3,
    oldestUnackedAgeMs: 10,
  });
});

t.test('a broker that is shutting down answers 503 Unavailable with retry-after', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const i = `/v1/instances/${tenant.instanceId}`;
  await signedFetch(wharf.url, {
    method: 'PUT',
    path: `${i}/topics/t`,
    body: { messageType: 'NORMAL' },
    ...who,
  });
  await wharf.broker.close();
  const res = await signedFetch(wharf.url, {
    method: 'POST',
    path: `${i}/topics/t/messages`,
    body: { messages: [{ body: 'x' }] },
    ...who,
  });
  t.equal(res.status, 503);
  t.equal(await code(res), 'Unavailable');
  t.equal(res.headers.get('retry-after'), '1');
});

t.test('waiting receives are bounded per tenant on a gateway', async (t) => {
  const fake = new FakeBroker();
  const wharf = await startWharf(t, { brokers: fake, config: { maxParkedReceivesPerTenant: 1 } });
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const i = `/v1/instances/${tenant.instanceId}`;
  await signedFetch(wharf.url, {
    method: 'PUT',
    path: `${i}/topics/t`,
    body: { messageType: 'NORMAL' },
    ...who,
  });
  await signedFetch(wharf.url, { method: 'PUT', path: `${i}/groups/g`, body: {}, ...who });
  let release: (() => void) | undefined;
  fake.answers.receive = (_t, _g, request) =>
    request.waitMs === 0 ? [] : new Promise((resolve) => (release = () => resolve([])));
  const receive = (waitSeconds: number) =>
    signedFetch(wharf.url, {
      method: 'POST',
      path: `${i}/topics/t/groups/g/receive`,
      body: { waitSeconds },
      ...who,
    });
  const first = receive(20);
  while (release === undefined) await new Promise((r) => setTimeout(r, 10));
  const second = await receive(20);
  t.equal(second.status, 429);
  t.equal(second.headers.get('retry-after'), '1');
  t.equal((await receive(0)).status, 200, 'a receive that does not wait is not bounded');
  release();
  t.equal((await first).status, 200);
  t.equal((await receive(0)).status, 200);
});

t.test('a publish the broker failed does not use up the quota its retry needs', async (t) => {
  const { fake, call } = await setup(t, { publishPerSecond: 4 });
  const batch = { messages: Array.from({ length: 4 }, (_, i) => ({ body: `m${i}` })) };
  fake.answers.publish = () => Promise.reject(new WharfError('Unavailable', 'broker down'));
  t.equal((await call('POST', '/topics/normal/messages', batch)).status, 503);
  delete fake.answers.publish;
  t.equal(
    (await call('POST', '/topics/normal/messages', batch)).status,
    200,
    'the retry, at once, is within the quota',
  );
});
