// Messaging through the public HTTP API against a real broker: signed requests, real store.
import t, { type Test } from 'tap';
import { provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';
import { portOf, rawExchange, signedHead } from '../helpers/raw-http.js';
import { eventually } from '../helpers/eventually.js';

interface Received {
  messageId: string;
  receiptHandle: string;
  body: string;
  bodyEncoding: string;
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  shardingKey: string | null;
  queueId: number;
  queueOffset: number;
  publishTime: number;
  firstDeliveryTime: number;
  deliveryAttempt: number;
  nextVisibleTime: number;
}

async function setup(t: Test) {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const base = `/v1/instances/${tenant.instanceId}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await signedFetch(wharf.url, {
      method,
      path: `${base}${path}`,
      ...(body === undefined ? {} : { body }),
      ...who,
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const publish = (topic: string, messages: unknown[]) =>
    call('POST', `/topics/${topic}/messages`, { messages });
  const receive = async (
    topic: string,
    group: string,
    options: Record<string, unknown> = {},
  ): Promise<Received[]> => {
    const res = await call('POST', `/topics/${topic}/groups/${group}/receive`, {
      maxMessages: 32,
      ...options,
    });
    if (res.status !== 200) throw new Error(`receive ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.messages as Received[];
  };
  const ack = (topic: string, group: string, receiptHandles: string[]) =>
    call('POST', `/topics/${topic}/groups/${group}/ack`, { receiptHandles });
  return { wharf, tenant, who, base, call, publish, receive, ack };
}

t.test('publish, receive and ack over HTTP; every group gets every message', async (t) => {
  const { call, publish, receive, ack } = await setup(t);
  t.equal(
    (await call('PUT', '/topics/orders', { messageType: 'NORMAL', queueCount: 4 })).status,
    201,
  );
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  t.equal((await call('PUT', '/groups/shipping', {})).status, 201);
  const published = await publish('orders', [
    { body: 'hello', tag: 'TagA', keys: ['order-17'], properties: { region: 'eu' } },
    {
      body: Buffer.from([0, 255, 7]).toString('base64'),
      bodyEncoding: 'base64',
      shardingKey: 'order-17',
    },
  ]);
  t.equal(published.status, 200);
  t.equal(published.body.messages.length, 2);
  t.match(published.body.messages[0], {
    messageId: /^[0-9A-F]{32}$/,
    queueId: Number,
    bodyMd5: '5d41402abc4b2a76b9719d911017c592',
  });

  // published before the group's first receive, after its creation: still received
  const billing = await receive('orders', 'billing');
  t.equal(billing.length, 2);
  const text = billing.find((m) => m.bodyEncoding === 'utf8')!;
  t.match(text, {
    body: 'hello',
    tag: 'TagA',
    keys: ['order-17'],
    properties: { region: 'eu' },
    deliveryAttempt: 1,
  });
  t.ok(text.nextVisibleTime > Date.now());
  const binary = billing.find((m) => m.bodyEncoding === 'base64')!;
  t.same([...Buffer.from(binary.body, 'base64')], [0, 255, 7]);
  t.equal(binary.shardingKey, 'order-17');
  t.same(await receive('orders', 'billing'), [], 'in flight: invisible to the group');
  t.equal((await receive('orders', 'shipping')).length, 2, 'another group gets them too');

  const acked = await ack('orders', 'billing', [
    text.receiptHandle,
    text.receiptHandle.slice(0, -2) + 'AA',
    'not-a-handle',
  ]);
  t.equal(acked.status, 200);
  t.match(acked.body.results, [
    { receiptHandle: text.receiptHandle, ok: true },
    { ok: false, code: 'InvalidReceiptHandle' },
    { ok: false, code: 'InvalidReceiptHandle' },
  ]);
  t.match((await ack('orders', 'billing', [text.receiptHandle])).body.results, [
    { ok: false, code: 'ReceiptHandleExpired' },
  ]);

  // a group created after the messages were stored does not get them
  t.equal((await call('PUT', '/groups/late', {})).status, 201);
  t.same(await receive('orders', 'late'), []);

  const stats = await call('GET', '/topics/orders/groups/billing/stats');
  t.equal(stats.status, 200);
  t.match(stats.body, { backlog: 1, inflight: 1 });
  const topicStats = await call('GET', '/topics/orders/stats');
  t.match(topicStats.body, { messagesIn: 2 });
});

t.test(
  'long polling wakes on publish; redelivery, visibility, dead letters and resend',
  async (t) => {
    const { call, publish, receive, ack } = await setup(t);
    await call('PUT', '/topics/jobs', { messageType: 'NORMAL', queueCount: 2 });
    await call('PUT', '/groups/workers', {
      maxDeliveryAttempts: 2,
      invisibleSeconds: 1,
      retryPolicy: { backoffSeconds: [0] },
    });
    const waiting = receive('jobs', 'workers', { waitSeconds: 10 });
    await new Promise((r) => setTimeout(r, 100));
    const [{ messageId }] = (await publish('jobs', [{ body: 'job-1' }])).body.messages;
    const first = await waiting;
    t.equal(first[0]?.messageId, messageId, 'the parked receive got the message');

    // release now: delivered again at once with attempt 2
    const released = await call('POST', '/topics/jobs/groups/workers/visibility', {
      receiptHandle: first[0].receiptHandle,
      invisibleSeconds: 0,
    });
    t.equal(released.status, 200);
    const second = await receive('jobs', 'workers', { waitSeconds: 5 });
    t.match(second, [{ messageId, deliveryAttempt: 2 }]);
    const stale = await call('POST', '/topics/jobs/groups/workers/visibility', {
      receiptHandle: first[0].receiptHandle,
      invisibleSeconds: 5,
    });
    t.equal(stale.status, 410);
    t.equal(stale.body.error.code, 'ReceiptHandleExpired');

    // not acked after the last attempt: dead-lettered
    let dead: { messageId: string; deliveryAttempt: number; body: string }[] = [];
    for (let i = 0; i < 60 && dead.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      dead = (await call('GET', '/groups/workers/dead-letters')).body.messages;
    }
    t.match(dead, [{ messageId, deliveryAttempt: 2, body: 'job-1' }]);
    const view = await call('GET', `/topics/jobs/messages/${messageId}`);
    t.match(view.body.groups, [{ group: 'workers', state: 'DEAD_LETTERED' }]);
    const resend = await call('POST', '/groups/workers/dead-letters/resend', {
      messageIds: [messageId],
    });
    t.equal(resend.status, 200);
    const again = await receive('jobs', 'workers', { waitSeconds: 5 });
    t.match(again, [{ messageId, body: 'job-1', deliveryAttempt: 1 }]);
    t.ok((await ack('jobs', 'workers', [again[0].receiptHandle])).body.results[0].ok);
    t.same((await call('GET', '/groups/workers/dead-letters')).body.messages, []);
  },
);

t.test('a client that goes away frees its long-poll slot at once', async (t) => {
  const { wharf, who, base, call } = await setup(t);
  await call('PUT', '/topics/idle', { messageType: 'NORMAL' });
  await call('PUT', '/groups/g', {});
  const pending = signedFetch(wharf.url, {
    method: 'POST',
    path: `${base}/topics/idle/groups/g/receive`,
    body: { waitSeconds: 20 },
    ...who,
  });
  for (let i = 0; i < 50 && wharf.broker.stats().parkedReceives === 0; i++)
    await new Promise((r) => setTimeout(r, 20));
  t.equal(wharf.broker.stats().parkedReceives, 1);
  // close every connection of the server's clients: the parked receive must be released
  wharf.app.server.closeAllConnections();
  await pending.catch(() => undefined);
  for (let i = 0; i < 50 && wharf.broker.stats().parkedReceives > 0; i++)
    await new Promise((r) => setTimeout(r, 20));
  t.equal(wharf.broker.stats().parkedReceives, 0);
});

t.test('a client that leaves before its receive is looked up takes nothing', async (t) => {
  // no metadata cache: every request waits for Redis, so a client that sends its receive and
  // hangs up at once is gone before the gateway has resolved its key, topic and group
  const wharf = await startWharf(t, { cacheTtlMs: 0 });
  const tenant = await provisionTenant(wharf);
  const base = `/v1/instances/${tenant.instanceId}`;
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const call = (method: string, path: string, body?: unknown) =>
    signedFetch(wharf.url, { method, path: `${base}${path}`, body, ...who });
  t.equal((await call('PUT', '/topics/t', { messageType: 'NORMAL', queueCount: 1 })).status, 201);
  t.equal((await call('PUT', '/groups/g', {})).status, 201);
  const path = `${base}/topics/t/groups/g/receive`;
  for (let i = 0; i < 5; i++) {
    const body = Buffer.from(JSON.stringify({ waitSeconds: 30 }));
    const exchange = rawExchange(t, portOf(wharf.url), signedHead(wharf, tenant, path, body), body);
    exchange.socket.end(); // all sent, and gone: the gateway reads the request, then the end
  }
  t.equal((await call('POST', '/topics/t/messages', { messages: [{ body: 'm' }] })).status, 200);
  const res = await call('POST', '/topics/t/groups/g/receive', { waitSeconds: 10 });
  const { messages } = (await res.json()) as { messages: Received[] };
  t.same(
    messages.map((m) => [m.body, m.deliveryAttempt]),
    [['m', 1]],
    'the message reaches the client still there, on its first attempt',
  );
});

t.test('dedupId, tag filters, FIFO order, broadcasting', async (t) => {
  const { call, publish, receive, ack } = await setup(t);
  await call('PUT', '/topics/pay', { messageType: 'NORMAL', queueCount: 2 });
  await call('PUT', '/topics/seq', { messageType: 'FIFO', queueCount: 2 });
  await call('PUT', '/groups/g', {});
  await call('PUT', '/groups/fan', { deliveryMode: 'BROADCASTING' });

  const one = await publish('pay', [{ body: 'p', dedupId: 'payment-991' }]);
  const retry = await publish('pay', [{ body: 'p', dedupId: 'payment-991' }]);
  t.equal(retry.body.messages[0].messageId, one.body.messages[0].messageId);
  t.equal(retry.body.messages[0].duplicate, true);
  await publish('pay', [
    { body: 'a', tag: 'A' },
    { body: 'b', tag: 'B' },
  ]);
  const onlyA = await receive('pay', 'g', { tags: 'A' });
  t.same(
    onlyA.map((m) => m.body),
    ['a'],
    'the dedup-stored message has no tag; B is filtered',
  );

  await publish(
    'seq',
    ['1', '2', '3'].map((body) => ({ body, shardingKey: 'k' })),
  );
  const head = await receive('seq', 'g', { maxMessages: 1 });
  t.same(
    head.map((m) => m.body),
    ['1'],
  );
  t.same(await receive('seq', 'g'), [], 'the queue waits for the ack');
  await ack('seq', 'g', [head[0].receiptHandle]);
  t.same(
    (await receive('seq', 'g')).map((m) => m.body),
    ['2', '3'],
  );

  const noConsumer = await call('POST', '/topics/pay/groups/fan/receive', {});
  t.equal(noConsumer.status, 400);
  const a = await receive('pay', 'fan', { consumerId: 'a' });
  const b = await receive('pay', 'fan', { consumerId: 'b' });
  t.equal(a.length, 3);
  t.equal(b.length, 3);
});

t.test('query by id, key and time; reset to earliest', async (t) => {
  const { call, publish, receive, ack } = await setup(t);
  await call('PUT', '/topics/q', { messageType: 'NORMAL', queueCount: 2 });
  await call('PUT', '/groups/g', {});
  const ids = (
    await publish('q', [{ body: 'x', keys: ['k-1'] }, { body: 'y' }, { body: 'z' }])
  ).body.messages.map((m: { messageId: string }) => m.messageId);
  const byId = await call('GET', `/topics/q/messages/${ids[0]}`);
  t.match(byId.body, { messageId: ids[0], body: 'x', keys: ['k-1'] });
  t.equal((await call('GET', `/topics/q/messages/${'0'.repeat(32)}`)).status, 404);
  const byKey = await call('GET', '/topics/q/messages?key=k-1');
  t.same(
    byKey.body.messages.map((m: { messageId: string }) => m.messageId),
    [ids[0]],
  );
  t.notOk('nextCursor' in byKey.body, 'a query by key is one page');
  const keyed = await publish(
    'q',
    Array.from({ length: 3 }, (_, n) => ({ body: `k${n}`, keys: ['k-2'] })),
  );
  const newest = await call('GET', '/topics/q/messages?key=k-2&limit=2');
  t.equal(newest.body.messages.length, 2, 'the newest `limit` messages with the key');
  t.notOk('nextCursor' in newest.body);
  t.equal(keyed.body.messages.length, 3);
  const paged = await call('GET', '/topics/q/messages?key=k-2&limit=2&cursor=abc');
  t.equal(paged.status, 400);
  t.match(paged.body.error, { code: 'InvalidArgument', message: /a cursor pages a query by time/ });
  const page = await call('GET', `/topics/q/messages?from=0&to=${Date.now() + 1000}&limit=2`);
  t.equal(page.body.messages.length, 2);
  const rest = await call(
    'GET',
    `/topics/q/messages?from=0&to=${Date.now() + 1000}&limit=2&cursor=${page.body.nextCursor}`,
  );
  t.equal(rest.body.messages.length, 2);
  const last = await call(
    'GET',
    `/topics/q/messages?from=0&to=${Date.now() + 1000}&limit=2&cursor=${rest.body.nextCursor}`,
  );
  t.equal(last.body.messages.length, 2);
  t.notOk('nextCursor' in last.body, 'the last page');
  const got = await receive('q', 'g');
  await ack(
    'q',
    'g',
    got.map((m) => m.receiptHandle),
  );
  t.same(await receive('q', 'g'), []);
  t.equal((await call('POST', '/topics/q/groups/g/reset', { to: 'earliest' })).status < 300, true);
  t.equal((await receive('q', 'g')).length, 6, 'after reset the group reads from the start again');
  const trace = await call('GET', `/topics/q/messages/${ids[0]}/trace`);
  t.equal(trace.body.events[0].type, 'PUBLISHED');
});

t.test(
  'the trace of a re-created topic’s message holds none of the deleted topic’s events',
  async (t) => {
    const { call, publish, receive, ack } = await setup(t);
    t.equal((await call('PUT', '/topics/q', { messageType: 'NORMAL', queueCount: 1 })).status, 201);
    t.equal((await call('PUT', '/groups/g', {})).status, 201);
    const [old] = (await publish('q', [{ body: 'old' }])).body.messages;
    const got = await receive('q', 'g', { waitSeconds: 2 });
    t.equal((await ack('q', 'g', [got[0].receiptHandle])).status, 200);
    const before = await call('GET', `/topics/q/messages/${old.messageId}/trace`);
    t.same(
      before.body.events.map((e: { type: string }) => e.type),
      ['PUBLISHED', 'DELIVERED', 'ACKED'],
    );
    t.equal((await call('DELETE', '/topics/q')).status, 204);
    t.equal((await call('PUT', '/topics/q', { messageType: 'NORMAL', queueCount: 1 })).status, 201);
    // the new topic's first message sits at the old one's place (queue 0, offset 0)
    const [fresh] = (await publish('q', [{ body: 'new' }])).body.messages;
    const after = await call('GET', `/topics/q/messages/${fresh.messageId}/trace`);
    t.same(
      after.body.events.map((e: { type: string }) => e.type),
      ['PUBLISHED'],
      'never received: published only',
    );
  },
);

t.test('a query by time pages through a topic of 64 queues to its end', async (t) => {
  // the cursor holds every queue's next offset: long, and sent back whole
  const { call, publish } = await setup(t);
  t.equal(
    (await call('PUT', '/topics/wide', { messageType: 'NORMAL', queueCount: 64 })).status,
    201,
  );
  const bodies = Array.from({ length: 128 }, (_, n) => `m${n}`);
  for (let i = 0; i < bodies.length; i += 32)
    t.equal(
      (
        await publish(
          'wide',
          bodies.slice(i, i + 32).map((body) => ({ body })),
        )
      ).status,
      200,
    );
  const to = Date.now() + 1000;
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await call(
      'GET',
      `/topics/wide/messages?from=0&to=${to}&limit=10${cursor === undefined ? '' : `&cursor=${cursor}`}`,
    );
    t.equal(page.status, 200, `page ${++pages}`);
    if (page.status !== 200) break;
    seen.push(...page.body.messages.map((m: { body: string }) => m.body));
    cursor = page.body.nextCursor;
  } while (cursor !== undefined);
  t.same([...seen].sort(), [...bodies].sort(), 'every message once');
});

t.test('broadcasting: a reset moves consumers to come too, and counts no one', async (t) => {
  const { call, publish, receive, ack } = await setup(t);
  await call('PUT', '/topics/news', { messageType: 'NORMAL', queueCount: 2 });
  await call('PUT', '/groups/fan', { deliveryMode: 'BROADCASTING', maxDeliveryAttempts: 1 });
  const stats = async () => (await call('GET', '/topics/news/groups/fan/stats')).body;
  await publish(
    'news',
    ['o1', 'o2', 'o3'].map((body) => ({ body })),
  );
  // a reset before any consumer came: the first one starts there, not at the group's creation
  t.equal((await call('POST', '/topics/news/groups/fan/reset', { to: 'latest' })).status, 200);
  t.equal((await stats()).backlog, 0, 'nothing left for a consumer to come');
  const [o1] = (await call('GET', '/topics/news/messages?from=0&to=9999999999999&limit=1')).body
    .messages;
  t.same(
    (await call('GET', `/topics/news/messages/${o1.messageId}`)).body.groups,
    [],
    'no consumer yet: no group state listed',
  );
  await publish('news', [{ body: 'n1' }]);
  const first = await receive('news', 'fan', { consumerId: 'c1' });
  t.same(
    first.map((m) => m.body),
    ['n1'],
    'c1 starts where the group was reset to',
  );
  await ack(
    'news',
    'fan',
    first.map((m) => m.receiptHandle),
  );
  const drained = await stats();
  t.equal(drained.backlog, 0, 'the one consumer is drained: no backlog left behind');
  t.equal(drained.oldestUnackedAgeMs, 0);
  const [n1] = first;
  const view = (await call('GET', `/topics/news/messages/${n1.messageId}`)).body;
  t.same(
    view.groups.map((g: { consumerId?: string; state: string }) => [g.consumerId, g.state]),
    [['c1', 'ACKED']],
    'query by id lists the consumer, no one else',
  );
  // a consumer joining after the reset starts there too
  t.same(
    (await receive('news', 'fan', { consumerId: 'c2' })).map((m) => m.body),
    ['n1'],
    'c2 starts where the group was reset to',
  );

  // a dead letter of c2 re-sent: c3, who joins later, reads the original, not the copy too
  await publish('news', [{ body: 'n2' }]);
  const [n2] = await receive('news', 'fan', { consumerId: 'c2', invisibleSeconds: 1 });
  t.equal(n2.body, 'n2');
  await eventually('n2 dead-lettered for the group', async () => {
    await receive('news', 'fan', { consumerId: 'c2', waitSeconds: 1 });
    return (await stats()).deadLetters === 1;
  });
  const resent = await call('POST', '/groups/fan/dead-letters/resend', {
    messageIds: [n2.messageId],
  });
  t.equal(resent.status, 200);
  t.same(
    (await receive('news', 'fan', { consumerId: 'c3' })).map((m) => m.body).sort(),
    ['n1', 'n2'],
    'c3 gets each message once',
  );
});
