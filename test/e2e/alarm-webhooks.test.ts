// Alarms end to end through signed HTTP: a real local webhook receiver, the evaluator ticking
// every 100 ms, BullMQ delivering with retries on the node's Redis.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { verifyWebhookSignature } from '../../src/alarms/index.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  json,
  provisionTenant,
  startWharf,
  tenantCaller,
  type TestWharf,
} from '../helpers/wharf.js';

interface Delivery {
  body: string;
  signature: string;
}

/** A receiver on a free local port; `answer` decides each request's fate. */
async function startReceiver(
  t: Test,
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void,
) {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['wharf-signature'] ?? ''),
      });
      answer(deliveries.length, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, deliveries };
}

async function setUp(wharf: TestWharf) {
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  const publish = (n: number) =>
    call('POST', '/topics/orders/messages', {
      messages: Array.from({ length: n }, (_, k) => ({ body: `m${k}` })),
    });
  /** A rule firing as soon as anything waits for `billing`, notifying `webhookUrl`. */
  const alarmOnAnyBacklog = (name: string, webhookUrl: string) =>
    call('PUT', `/alarms/${name}`, {
      metric: 'backlog',
      topic: 'orders',
      group: 'billing',
      threshold: 0,
      forSeconds: 0,
      webhookUrl,
    });
  return { tenant, call, publish, alarmOnAnyBacklog };
}

t.test('a consumer falls behind: fires once, signed; it catches up: resolves', async (t) => {
  const wharf = await startWharf(t, { alarms: { intervalMs: 100 } });
  const receiver = await startReceiver(t, (_n, _req, res) => res.end('ok'));
  const { tenant, call, publish } = await setUp(wharf);
  const created = await call('PUT', '/alarms/behind', {
    metric: 'backlog',
    topic: 'orders',
    group: 'billing',
    threshold: 2,
    forSeconds: 1,
    webhookUrl: receiver.url,
  });
  t.equal(created.status, 201);
  const { webhookSecret } = await json(created);

  t.equal((await publish(5)).status, 200);
  await waitFor('the firing notification', () => receiver.deliveries.length >= 1, {
    timeoutMs: 30_000,
  });
  const fired = receiver.deliveries[0];
  t.ok(verifyWebhookSignature(webhookSecret, fired.signature, fired.body), 'valid signature');
  t.notOk(verifyWebhookSignature('another-secret', fired.signature, fired.body));
  t.match(JSON.parse(fired.body), {
    version: 1,
    rule: 'behind',
    metric: 'backlog',
    state: 'firing',
    value: 5,
    threshold: 2,
    tenant: tenant.tenantId,
    instance: tenant.instanceId,
    topic: 'orders',
    group: 'billing',
    notification: 1,
    time: Number,
  });

  // catch up: receive and ack everything
  let left = 5;
  while (left > 0) {
    const got = await json(
      await call('POST', '/topics/orders/groups/billing/receive', {
        maxMessages: 16,
        waitSeconds: 1,
      }),
    );
    const handles = got.messages.map((m: { receiptHandle: string }) => m.receiptHandle);
    if (handles.length === 0) continue;
    await call('POST', '/topics/orders/groups/billing/ack', { receiptHandles: handles });
    left -= handles.length;
  }
  await waitFor('the resolution', () => receiver.deliveries.length >= 2, { timeoutMs: 30_000 });
  const resolved = receiver.deliveries[1];
  t.ok(verifyWebhookSignature(webhookSecret, resolved.signature, resolved.body));
  t.match(JSON.parse(resolved.body), { state: 'resolved', value: 0, notification: 2 });

  const history = await waitFor('both deliveries in the history', async () => {
    const body = await json(await call('GET', '/alarms/behind/history'));
    return body.events.length >= 4 ? body.events : null;
  });
  t.match([...history].reverse(), [
    { type: 'fired', notification: 1, value: 5, threshold: 2 },
    { type: 'delivery', notification: 1, attempt: 1, ok: true, status: 200 },
    { type: 'resolved', notification: 2, value: 0 },
    { type: 'delivery', notification: 2, attempt: 1, ok: true, status: 200 },
  ]);
  t.equal(receiver.deliveries.length, 2, 'fired once, resolved once');
  t.equal((await call('GET', '/alarms/nope/history')).status, 404);
});

t.test('a receiver that fails twice gets the third try', async (t) => {
  const wharf = await startWharf(t, { alarms: { intervalMs: 100, backoffMs: 50, attempts: 5 } });
  const receiver = await startReceiver(t, (n, _req, res) => {
    res.statusCode = n <= 2 ? 500 : 204;
    res.end();
  });
  const { call, publish, alarmOnAnyBacklog } = await setUp(wharf);
  await alarmOnAnyBacklog('any', receiver.url);
  await publish(1);
  await waitFor('three attempts', () => receiver.deliveries.length >= 3, { timeoutMs: 30_000 });
  t.equal(receiver.deliveries[0].body, receiver.deliveries[2].body, 'the same body each time');
  const events = await waitFor('the third attempt in the history', async () => {
    const body = await json(await call('GET', '/alarms/any/history'));
    return body.events.length >= 4 ? body.events : null;
  });
  t.match([...events].reverse(), [
    { type: 'fired' },
    { type: 'delivery', attempt: 1, ok: false, status: 500, error: /500/ },
    { type: 'delivery', attempt: 2, ok: false, status: 500 },
    { type: 'delivery', attempt: 3, ok: true, status: 204 },
  ]);
});

t.test('a hanging receiver does not delay publishes', async (t) => {
  const wharf = await startWharf(t, {
    // the deadline only bounds the teardown (the worker's close lets the attempt end)
    alarms: { intervalMs: 100, timeoutMs: 5000, attempts: 1 },
  });
  // never answers (its connections are closed at teardown)
  const receiver = await startReceiver(t, () => undefined);
  const { publish, alarmOnAnyBacklog } = await setUp(wharf);
  await alarmOnAnyBacklog('hang', receiver.url);
  await publish(1);
  await waitFor('the receiver holding a delivery', () => receiver.deliveries.length >= 1, {
    timeoutMs: 30_000,
  });
  const latenciesMs: number[] = [];
  for (let k = 0; k < 50; k++) {
    const started = process.hrtime.bigint();
    const res = await publish(1);
    latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    t.equal(res.status, 200, `publish ${k} while the webhook hangs`);
  }
  latenciesMs.sort((a, b) => a - b);
  t.comment(
    `publish latency while a webhook hangs (shared, noisy machine): p50 ${latenciesMs[25].toFixed(1)} ms, max ${latenciesMs[49].toFixed(1)} ms`,
  );
});

t.test(
  'webhook URLs to private addresses are refused unless the operator allows them',
  async (t) => {
    const wharf = await startWharf(t);
    const { call } = await setUp(wharf);
    const spec = { metric: 'publishRate', topic: 'orders', threshold: 1, forSeconds: 0 };
    for (const url of [
      'http://127.0.0.1:9000/hook',
      'http://2130706433/hook',
      'http://[::ffff:169.254.169.254]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://localhost/',
      'http://10.0.0.1/',
    ]) {
      const res = await call('PUT', '/alarms/ssrf', { ...spec, webhookUrl: url });
      t.equal(res.status, 400, url);
      t.equal((await json(res)).error.code, 'InvalidArgument');
    }
    t.equal(
      (await call('PUT', '/alarms/ok', { ...spec, webhookUrl: 'https://hooks.example.com/x' }))
        .status,
      201,
    );
  },
);

t.test('at delivery, a private address is refused without retries', async (t) => {
  // the gateway lets the rule in; the notifier (the operator setting off) refuses to send
  const wharf = await startWharf(t, {
    alarms: { intervalMs: 100, allowPrivate: false, backoffMs: 50, attempts: 5 },
  });
  const receiver = await startReceiver(t, (_n, _req, res) => res.end());
  const { call, publish, alarmOnAnyBacklog } = await setUp(wharf);
  await alarmOnAnyBacklog('inside', receiver.url);
  await publish(1);
  const events = await waitFor('the refused attempt', async () => {
    const body = await json(await call('GET', '/alarms/inside/history'));
    return body.events.some((e: { type: string }) => e.type === 'delivery') ? body.events : null;
  });
  t.match(events[0], { type: 'delivery', attempt: 1, ok: false, error: /loopback/ });
  t.equal(receiver.deliveries.length, 0, 'nothing reached the receiver');
});

t.test(
  'a firing still retried when its resolution was delivered is not sent after it',
  async (t) => {
    const wharf = await startWharf(t, { alarms: { intervalMs: 100, backoffMs: 200, attempts: 8 } });
    // the firing fails until the resolution has come: an older notification retried later
    let resolvedSeen = false;
    const receiver = await startReceiver(t, (_n, req, res) => {
      void req;
      const last = JSON.parse(receiver.deliveries[receiver.deliveries.length - 1].body) as {
        state: string;
      };
      if (last.state === 'resolved') resolvedSeen = true;
      res.statusCode = last.state === 'firing' && !resolvedSeen ? 500 : 204;
      res.end();
    });
    const { tenant, call, publish, alarmOnAnyBacklog } = await setUp(wharf);
    await alarmOnAnyBacklog('any', receiver.url);
    await publish(1);
    await waitFor('the firing tried', () => receiver.deliveries.length >= 1, { timeoutMs: 30_000 });
    const got = await json(
      await call('POST', '/topics/orders/groups/billing/receive', { waitSeconds: 5 }),
    );
    await call('POST', '/topics/orders/groups/billing/ack', {
      receiptHandles: got.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
    });
    await waitFor('the resolution delivered', () => resolvedSeen, { timeoutMs: 30_000 });
    // the firing's next attempt finds a later notification of its alarm: dropped, not sent
    const events = await waitFor(
      'the firing given up',
      async () => {
        const body = await json(await call('GET', '/alarms/any/history'));
        const superseded = body.events.find(
          (e: { error?: string }) => e.error?.startsWith('superseded') === true,
        );
        return superseded === undefined ? null : body.events;
      },
      { timeoutMs: 30_000 },
    );
    t.match(events[0], {
      type: 'delivery',
      ok: false,
      error: /^superseded by notification 2, delivered/,
    });
    const states = receiver.deliveries.map((d) => (JSON.parse(d.body) as { state: string }).state);
    t.equal(
      states[states.length - 1],
      'resolved',
      `the receiver's last word: ${states.join(', ')}`,
    );
    void tenant;
  },
);
