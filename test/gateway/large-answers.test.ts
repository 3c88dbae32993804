// Large receive answers: one answer carries at most 16 MiB of bodies (the rest is given back
// unseen for the next receive), and a client that stops reading a large answer has its
// connection dropped, so the gateway does not hold the answer for as long as the client likes.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { adminFetch, json, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';
import { portOf, signedHead } from '../helpers/raw-http.js';
import { waitFor, waitUntilPast } from '../helpers/wait-for.js';

const BODY_BYTES = 4_000_000;

t.test('a receive answers 16 MiB of bodies at most; a stalled reader is dropped', async (t) => {
  const wharf = await startWharf(t, { config: { answerStallMs: 500 } });
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const topic = `/v1/instances/${tenant.instanceId}/topics/big`;
  t.equal(
    (
      await signedFetch(wharf.url, {
        method: 'PUT',
        path: topic,
        body: { messageType: 'NORMAL' },
        ...who,
      })
    ).status,
    201,
  );
  const group = `/v1/instances/${tenant.instanceId}/groups/g`;
  t.equal(
    (await signedFetch(wharf.url, { method: 'PUT', path: group, body: {}, ...who })).status,
    201,
  );
  for (let i = 0; i < 5; i++) {
    const published = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topic}/messages`,
      body: { messages: [{ body: String(i).repeat(BODY_BYTES) }] },
      ...who,
    });
    t.equal(published.status, 200);
  }

  // A client asks for 32 and never reads the answer (four bodies: 16,000,000 bytes).
  const served = new Promise<Socket>((resolve) =>
    wharf.app.server.on('connection', (socket: Socket) => resolve(socket)),
  );
  const client = connect(portOf(wharf.url), '127.0.0.1');
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  const receive = Buffer.from(JSON.stringify({ maxMessages: 32, waitSeconds: 1 }));
  client.write(signedHead(wharf, tenant, `${topic}/groups/g/receive`, receive));
  client.write(receive);
  client.pause();
  const server = await served;
  await once(server, 'close');
  t.pass('the gateway dropped the connection the client stopped reading');
  client.resume();
  let answered = 0;
  client.on('data', (chunk: Buffer) => (answered += chunk.length));
  await once(client, 'close');
  t.ok(answered < 4 * BODY_BYTES, 'the client got part of the answer only');

  // The fifth body did not fit that answer: given back unseen, the next receive has it at once.
  const next = await signedFetch(wharf.url, {
    method: 'POST',
    path: `${topic}/groups/g/receive`,
    body: { maxMessages: 32, waitSeconds: 0 },
    ...who,
  });
  t.equal(next.status, 200);
  const { messages } = (await json(next)) as {
    messages: { body: string; deliveryAttempt: number }[];
  };
  t.equal(messages.length, 1, 'one message: the four answered are in flight');
  t.equal(messages[0].body, '4'.repeat(BODY_BYTES));
  t.equal(messages[0].deliveryAttempt, 1, 'its first delivery');
});

/** A tenant of `wharf` with topic `big` (one queue) and group `g`, and calls signed as it. */
async function bigTopicTenant(t: Test, wharf: Awaited<ReturnType<typeof startWharf>>) {
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const base = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body: object) =>
    signedFetch(wharf.url, { method, path: `${base}${path}`, body, ...who });
  t.equal((await call('PUT', '/topics/big', { messageType: 'NORMAL', queueCount: 1 })).status, 201);
  t.equal((await call('PUT', '/groups/g', {})).status, 201);
  const publish = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const body = { messages: [{ body: String(i % 10).repeat(BODY_BYTES) }] };
      t.equal((await call('POST', '/topics/big/messages', body)).status, 200);
    }
  };
  const receive = () =>
    call('POST', '/topics/big/groups/g/receive', { maxMessages: 32, waitSeconds: 0 }).then(
      async (r) => ((await json(r)) as { messages: { body: string }[] }).messages,
    );
  /** A client of this tenant that asks for `path`'s answer and does not read it. */
  const unreadAnswer = async (path: string) => {
    const served = new Promise<Socket>((resolve) =>
      wharf.app.server.on('connection', (socket: Socket) => {
        socket.on('data', (chunk: Buffer) => {
          if (chunk.includes(`${base}${path}`)) resolve(socket);
        });
      }),
    );
    const client = connect(portOf(wharf.url), '127.0.0.1');
    client.on('error', () => undefined);
    t.teardown(() => client.destroy());
    const body = Buffer.from(JSON.stringify({ maxMessages: 32, waitSeconds: 0 }));
    client.write(signedHead(wharf, tenant, `${base}${path}`, body));
    client.write(body);
    const server = await served;
    await waitFor('the answer handed to the socket', () => server.bytesWritten > 1_000_000);
    server.on('error', () => undefined); // reset by the client
    return async () => {
      const closed = new Promise((resolve) => server.once('close', resolve));
      client.destroy();
      await closed;
    };
  };
  return { tenant, call, publish, receive, unreadAnswer };
}

t.test('answers not yet out hold a gateway-wide budget: past it a receive gets less', async (t) => {
  const wharf = await startWharf(t, { config: { answersInFlightBytes: 25_000_000 } });
  const fast = await bigTopicTenant(t, wharf);
  const slow = await bigTopicTenant(t, wharf);
  await fast.publish(6);
  await slow.publish(6);
  // a client of one tenant that does not read its answer of four bodies (16 MB): held
  const hangUp = await slow.unreadAnswer('/topics/big/groups/g/receive');
  const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  t.match(metrics, /\nwharf_answer_bytes_in_flight 16000000\n/, 'the held bytes in /metrics');
  // 9 MB of the budget left: two bodies, where the 16 MiB of one answer would take four
  t.equal((await fast.receive()).length, 2, 'two of the four a lone answer carries');
  // the budget is past its half and that tenant holds its share (16 MiB, one answer): only the
  // one first message, while the other tenant still had 9 MB
  t.equal((await slow.receive()).length, 1, 'the tenant holding its share gets one');
  await hangUp();
  t.equal((await fast.receive()).length, 4, 'the budget back once that client is gone');
});

t.test('a tenant whose answers go unread leaves the others their room', async (t) => {
  // 41 MB: past 20.5 MB held, a tenant keeps to its share (one answer's 16 MiB); not a round
  // 40 MB, whose half the hog's answers below would reach exactly
  const wharf = await startWharf(t, { config: { answersInFlightBytes: 41_000_000 } });
  const victim = await bigTopicTenant(t, wharf);
  const hog = await bigTopicTenant(t, wharf);
  await hog.publish(12);
  await victim.publish(4);
  // the hog leaves three answers unread: the first holds four bodies (16 MB, its share), the
  // others one body each (before, they held four and two: all 40 MB)
  for (let i = 0; i < 3; i++) await hog.unreadAnswer('/topics/big/groups/g/receive');
  const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  const held = Number(/\nwharf_answer_bytes_in_flight (\d+)\n/.exec(metrics)?.[1]);
  t.ok(
    held >= 16_000_000 && held <= 24_000_000,
    `the hog holds its share and two bodies at most (${held})`,
  );
  // before, the victim got one body an answer
  t.equal((await victim.receive()).length, 4, "the victim's whole answer: its share is free");
});

t.test('a receive parked before the budget filled is answered within what is left', async (t) => {
  const wharf = await startWharf(t, { config: { answersInFlightBytes: 18_500_000 } });
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const base = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body: object) =>
    signedFetch(wharf.url, { method, path: `${base}${path}`, body, ...who });
  await call('PUT', '/topics/y', { messageType: 'NORMAL', queueCount: 1 });
  await call('PUT', '/groups/g', {});

  // a receive parks on the empty topic y while nothing is held: it may take 16 MiB
  const parked = call('POST', '/topics/y/groups/g/receive', { maxMessages: 32, waitSeconds: 20 });
  await waitFor('the receive parked', () => wharf.broker.longPoll.parkedCount === 1);
  // then another tenant's client that does not read its answer of four bodies (16 MB)
  const other = await bigTopicTenant(t, wharf);
  await other.publish(4);
  await other.unreadAnswer('/topics/big/groups/g/receive');

  // 2.5 MB left: of four bodies of 1 MB landing at once, the parked receive answers two
  const mb = 1_000_000;
  t.equal(
    (
      await call('POST', '/topics/y/messages', {
        messages: ['a', 'b', 'c', 'd'].map((c) => ({ body: c.repeat(mb) })),
      })
    ).status,
    200,
  );
  const first = ((await json(await parked)) as { messages: { body: string }[] }).messages;
  t.equal(first.length, 2, 'two bodies: what the budget left');
  const rest = (
    (await json(
      await call('POST', '/topics/y/groups/g/receive', { maxMessages: 32, waitSeconds: 0 }),
    )) as { messages: { deliveryAttempt: number }[] }
  ).messages;
  t.same(
    rest.map((m) => m.deliveryAttempt),
    [1, 1],
    'the other two given back unseen',
  );
});

/** A 25 MB answer budget, a producer tenant with TRANSACTION topic `tx` whose halves are due
 *  `checkDelayMs` after their publish, and another tenant with six 4 MB bodies to receive. */
async function checkBudgetSetup(t: Test, checkDelayMs: number) {
  const wharf = await startWharf(t, {
    config: { answersInFlightBytes: 25_000_000 },
    transactions: { checkDelayMs, sweepIntervalMs: 20 },
  });
  const producer = await bigTopicTenant(t, wharf);
  const other = await bigTopicTenant(t, wharf);
  await other.publish(6);
  t.equal(
    (await producer.call('PUT', '/topics/tx', { messageType: 'TRANSACTION', queueCount: 1 }))
      .status,
    201,
  );
  return { wharf, producer, other };
}

t.test("a transaction check's answer is held against the budget as a receive's is", async (t) => {
  const { wharf, producer, other } = await checkBudgetSetup(t, 100);
  for (let i = 0; i < 5; i++) {
    const body = { messages: [{ body: String(i).repeat(BODY_BYTES) }] };
    t.equal((await producer.call('POST', '/topics/tx/messages', body)).status, 200);
  }
  // all five due (100 ms after their publish): a check made earlier answers with those due
  // then, fewer than four on a loaded machine
  await waitUntilPast(Date.now() + 100);
  // a producer's check whose answer (four half bodies, 16 MB) its client does not read
  await producer.unreadAnswer('/topics/tx/transactions/check');
  const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  t.match(metrics, /\nwharf_answer_bytes_in_flight 16000000\n/, 'the held bytes in /metrics');
  // 9 MB of the budget left: two bodies for the other tenant's receive
  t.equal((await other.receive()).length, 2, 'two of the four a lone answer carries');
});

t.test('a check of a tenant holding its share of a full budget is 429', async (t) => {
  const wharf = await startWharf(t, {
    config: { answersInFlightBytes: 20_000_000 },
    transactions: { checkDelayMs: 100, sweepIntervalMs: 20 },
  });
  const producer = await bigTopicTenant(t, wharf);
  await producer.publish(5);
  // the tenant's unread answers: four bodies (16 MB), then one (past half the budget, the
  // first message an answer always carries): 20 MB, its whole share (16 MiB) and more
  await producer.unreadAnswer('/topics/big/groups/g/receive');
  await producer.unreadAnswer('/topics/big/groups/g/receive');
  t.equal(
    (await producer.call('PUT', '/topics/tx', { messageType: 'TRANSACTION', queueCount: 1 }))
      .status,
    201,
  );
  const body = { messages: [{ body: 'x'.repeat(BODY_BYTES) }] };
  t.equal((await producer.call('POST', '/topics/tx/messages', body)).status, 200);
  const check = await producer.call('POST', '/topics/tx/transactions/check', {
    maxMessages: 32,
    waitSeconds: 1,
  });
  t.equal(check.status, 429, 'refused, as its receive would be');
  t.equal(((await json(check)) as { error: { code: string } }).error.code, 'Throttled');
  t.ok(check.headers.get('retry-after'), 'with retry-after');
});

t.test('a parked check holds the room it may fill while it waits', async (t) => {
  const { wharf, producer, other } = await checkBudgetSetup(t, 60_000);
  const heldBytes = async () =>
    Number(
      /\nwharf_answer_bytes_in_flight (\d+)\n/.exec(
        await (await adminFetch(wharf, 'GET', '/metrics')).text(),
      )?.[1],
    );
  // nothing is due: the check parks, holding one answer's room (16 MiB), since the offers it
  // is answered with cannot be cut to what the budget has left by then
  const parked = producer.call('POST', '/topics/tx/transactions/check', {
    maxMessages: 32,
    waitSeconds: 2,
  });
  await waitFor('the parked check holds its room', async () => (await heldBytes()) === 16_777_216);
  t.equal((await other.receive()).length, 2, 'the other tenant has what is left: two bodies');
  const answered = await parked;
  t.equal(answered.status, 200);
  t.same(((await json(answered)) as { messages: unknown[] }).messages, [], 'nothing was due');
  await waitFor('the room given back', async () => (await heldBytes()) === 0);
  t.equal((await other.receive()).length, 4, 'the rest in one answer');
});
