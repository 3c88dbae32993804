// Large receive answers: one answer carries at most 16 MiB of bodies (the rest is given back
// unseen for the next receive), and a client that stops reading a large answer has its
// connection dropped, so the gateway does not hold the answer for as long as the client likes.
import t from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { adminFetch, json, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';
import { portOf, signedHead } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait-for.js';

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

t.test('answers not yet out hold a gateway-wide budget: past it a receive gets less', async (t) => {
  const wharf = await startWharf(t, { config: { answersInFlightBytes: 25_000_000 } });
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const base = `/v1/instances/${tenant.instanceId}`;
  const put = async (path: string, body: object) =>
    t.equal((await signedFetch(wharf.url, { method: 'PUT', path, body, ...who })).status, 201);
  await put(`${base}/topics/big`, { messageType: 'NORMAL', queueCount: 1 });
  await put(`${base}/groups/slow`, {});
  await put(`${base}/groups/fast`, {});
  for (let i = 0; i < 6; i++) {
    const published = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${base}/topics/big/messages`,
      body: { messages: [{ body: String(i).repeat(BODY_BYTES) }] },
      ...who,
    });
    t.equal(published.status, 200);
  }
  const receive = (group: string) =>
    signedFetch(wharf.url, {
      method: 'POST',
      path: `${base}/topics/big/groups/${group}/receive`,
      body: { maxMessages: 32, waitSeconds: 0 },
      ...who,
    }).then(async (r) => ((await json(r)) as { messages: { body: string }[] }).messages);

  // a client that does not read its answer of four bodies (16 MB): the gateway holds them
  const served = new Promise<Socket>((resolve) =>
    wharf.app.server.on('connection', (socket: Socket) => resolve(socket)),
  );
  const client = connect(portOf(wharf.url), '127.0.0.1');
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  const body = Buffer.from(JSON.stringify({ maxMessages: 32, waitSeconds: 0 }));
  client.write(signedHead(wharf, tenant, `${base}/topics/big/groups/slow/receive`, body));
  client.write(body);
  const server = await served;
  await waitFor('the answer handed to the socket', () => server.bytesWritten > 1_000_000);

  const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  t.match(metrics, /\nwharf_answer_bytes_in_flight 16000000\n/, 'the held bytes in /metrics');
  // 9 MB of the budget left: two bodies, where the 16 MiB of one answer would take four
  t.equal((await receive('fast')).length, 2, 'two of the four a lone answer carries');
  server.on('error', () => undefined); // reset by the client
  const closed = new Promise((resolve) => server.once('close', resolve));
  client.destroy();
  await closed;
  t.equal((await receive('fast')).length, 4, 'the budget back once that client is gone');
});

t.test('a receive parked before the budget filled is answered within what is left', async (t) => {
  const wharf = await startWharf(t, { config: { answersInFlightBytes: 18_500_000 } });
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const base = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body: object) =>
    signedFetch(wharf.url, { method, path: `${base}${path}`, body, ...who });
  for (const topic of ['x', 'y'])
    await call('PUT', `/topics/${topic}`, { messageType: 'NORMAL', queueCount: 1 });
  await call('PUT', '/groups/g', {});
  for (let i = 0; i < 4; i++)
    await call('POST', '/topics/x/messages', {
      messages: [{ body: String(i).repeat(BODY_BYTES) }],
    });

  // a receive parks on the empty topic y while nothing is held: it may take 16 MiB
  const parked = call('POST', '/topics/y/groups/g/receive', { maxMessages: 32, waitSeconds: 20 });
  await waitFor('the receive parked', () => wharf.broker.longPoll.parkedCount === 1);
  // then a client that does not read its answer of four bodies (16 MB) on topic x
  const served = new Promise<Socket>((resolve) =>
    wharf.app.server.on('connection', (socket: Socket) => {
      socket.on('data', (chunk: Buffer) => {
        if (chunk.includes('/topics/x/')) resolve(socket);
      });
    }),
  );
  const client = connect(portOf(wharf.url), '127.0.0.1');
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  const body = Buffer.from(JSON.stringify({ maxMessages: 32, waitSeconds: 0 }));
  client.write(signedHead(wharf, tenant, `${base}/topics/x/groups/g/receive`, body));
  client.write(body);
  const server = await served;
  await waitFor('the answer handed to the socket', () => server.bytesWritten > 1_000_000);

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
