// Request bodies and connections under bad actors (issue #8, defect 4), over real sockets:
// credentials are refused from the headers before a byte of the body is sent, a declared payload
// hash lets SigV4 check the signature before the body, the bytes of bodies held at once are
// bounded (503 Unavailable past the budget), and so are the connections of one address (429).
import t from 'tap';
import { connect } from 'node:net';
import { sha256Hex } from '../../src/gateway/sigv4.js';
import {
  adminFetch,
  json,
  provisionTenant,
  signedFetch,
  startWharf,
  type TestWharf,
} from '../helpers/wharf.js';
import { LINGER_MS } from '../../src/gateway/plugins/error-handler.js';
import { RAW_ANSWER_DEADLINE_MS, portOf, rawExchange, signedHead } from '../helpers/raw-http.js';
import { eventually } from '../helpers/eventually.js';

const MIB = 1024 * 1024;
function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
}

function publishBody(bytes: number): Buffer {
  const overhead = '{"messages":[{"body":""}]}'.length;
  return Buffer.from(`{"messages":[{"body":"${'m'.repeat(bytes - overhead)}"}]}`);
}

async function bodyBytesInFlight(wharf: TestWharf): Promise<number> {
  const text = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  return Number(/^wharf_request_body_bytes_in_flight (\d+)/m.exec(text)?.[1] ?? NaN);
}

t.test('bad credentials are answered from the headers, before any of the body', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const port = portOf(wharf.url);
  const path = `/v1/instances/${tenant.instanceId}/topics/orders/messages`;
  const now = amzDate(Date.now());
  const credential = (akid: string, date: string) =>
    `AWS4-HMAC-SHA256 Credential=${akid}/${date.slice(0, 8)}/local/mq/aws4_request, ` +
    `SignedHeaders=host;x-amz-date, Signature=${'ab'.repeat(32)}`;
  const cases: [string, string, string, number, string][] = [
    ['no credentials', 'POST', path, 401, ''],
    [
      'an unknown key',
      'POST',
      path,
      403,
      `authorization: ${credential('WKAAAAAAAAAAAAAAAAAA', now)}\r\nx-amz-date: ${now}\r\n`,
    ],
    [
      'a date years off',
      'POST',
      path,
      403,
      `authorization: ${credential(tenant.accessKeyId, '20100101T000000Z')}\r\nx-amz-date: 20100101T000000Z\r\n`,
    ],
    [
      'no signature',
      'POST',
      path,
      403,
      `authorization: AWS4-HMAC-SHA256 Credential=${tenant.accessKeyId}/${now.slice(0, 8)}/local/mq/aws4_request, SignedHeaders=host;x-amz-date\r\nx-amz-date: ${now}\r\n`,
    ],
    ['a forged bearer token', 'POST', path, 403, 'authorization: Bearer e30.e30.e30\r\n'],
    [
      'a wrong operator token',
      'POST',
      '/admin/v1/tenants',
      403,
      'authorization: Bearer not-the-operator-token\r\n',
    ],
    ['an unknown path', 'POST', '/v1/no-such-route', 404, ''],
  ];
  const codes = [
    'MissingAuthentication',
    'InvalidAccessKeyId',
    'RequestExpired',
    'IncompleteSignature',
    'InvalidToken',
    'InvalidToken',
    'NotFound',
  ];
  for (const [i, [what, method, target, status, auth]] of cases.entries()) {
    const { answer } = rawExchange(
      t,
      port,
      `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
        `content-length: ${8 * MIB - 1}\r\n${auth}\r\n`,
    );
    const res = await answer;
    t.equal(res.status, status, `${what}: ${status} with no body sent`);
    t.equal(JSON.parse(res.body).error.code, codes[i], `${what}: ${codes[i]}`);
  }

  // A valid key whose declared body would be over the limit: 413 from the headers too.
  const huge = publishBody(64);
  const head = signedHead(wharf, tenant, path, huge).replace(
    /content-length: \d+/i,
    `content-length: ${9 * MIB}`,
  );
  const tooLarge = await rawExchange(t, port, head).answer;
  t.equal(tooLarge.status, 413);
  t.equal(JSON.parse(tooLarge.body).error.code, 'MessageTooLarge');
});

t.test('a declared payload hash lets SigV4 refuse a bad signature before the body', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const port = portOf(wharf.url);
  const topic = `/v1/instances/${tenant.instanceId}/topics/orders`;
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
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
  const body = publishBody(MIB);
  const declared = { 'x-amz-content-sha256': sha256Hex(body) };
  const forged = signedHead(wharf, tenant, `${topic}/messages`, body, declared).replace(
    /Signature=[0-9a-f]{64}/,
    `Signature=${'cd'.repeat(32)}`,
  );
  const refused = await rawExchange(t, port, forged).answer;
  t.equal(refused.status, 403, 'refused with no body sent');
  t.equal(JSON.parse(refused.body).error.code, 'SignatureDoesNotMatch');

  const good = rawExchange(
    t,
    port,
    signedHead(wharf, tenant, `${topic}/messages`, body, declared),
    body,
  );
  t.equal((await good.answer).status, 200, 'the same request signed right is served');
  const other = publishBody(MIB);
  other[other.length - 4] = 0x6e; // a body that is not the declared one
  const mismatch = rawExchange(
    t,
    port,
    signedHead(wharf, tenant, `${topic}/messages`, body, declared),
    other,
  );
  const answer = await mismatch.answer;
  t.equal(answer.status, 403);
  t.equal(JSON.parse(answer.body).error.code, 'SignatureDoesNotMatch', 'the body must hash to it');
});

t.test('Expect: 100-continue is answered only after the credential was checked', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const port = portOf(wharf.url);
  const topic = `/v1/instances/${tenant.instanceId}/topics/orders`;
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const put = { method: 'PUT', path: topic, body: { messageType: 'NORMAL' }, ...who };
  t.equal((await signedFetch(wharf.url, put)).status, 201);

  const refused = await rawExchange(
    t,
    port,
    `POST ${topic}/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
      `content-length: ${4 * MIB}\r\nexpect: 100-continue\r\n\r\n`,
  ).answer;
  t.equal(refused.status, 401, 'no "continue" for a request without credentials');

  const body = publishBody(2 * MIB);
  const head = signedHead(wharf, tenant, `${topic}/messages`, body, { expect: '100-continue' });
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let data = '';
  const served = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer: ${data}`)), RAW_ANSWER_DEADLINE_MS);
    socket.on('data', (chunk: Buffer) => {
      const first = data === '';
      data += chunk.toString('latin1');
      if (first && data.startsWith('HTTP/1.1 100')) socket.write(body);
      const final = /HTTP\/1\.1 (2\d\d|[45]\d\d)/.exec(data);
      if (final !== null) {
        clearTimeout(timer);
        resolve(final[1]);
      }
    });
  });
  socket.write(head);
  t.equal(await served, '200', 'a signed request gets "continue", sends its body, is served');
  t.match(data, /^HTTP\/1\.1 100 Continue/, 'after a 100 Continue');
});

t.test(
  'bodies in flight are bounded: past the budget, 503 Unavailable with retry-after',
  async (t) => {
    const wharf = await startWharf(t, { config: { bodiesInFlightBytes: 2 * MIB } });
    const tenant = await provisionTenant(wharf);
    const port = portOf(wharf.url);
    const topic = `/v1/instances/${tenant.instanceId}/topics/orders`;
    const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
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

    // A signed 1.5 MiB publish whose body stalls after 1 MiB holds 1.5 MiB of the budget.
    const slowBody = publishBody(1.5 * MIB);
    const slow = rawExchange(t, port, signedHead(wharf, tenant, `${topic}/messages`, slowBody));
    slow.socket.write(slowBody.subarray(0, MIB));
    await eventually(
      'the stalled body to hold its bytes',
      async () => (await bodyBytesInFlight(wharf)) >= 1.5 * MIB,
    );

    const refused = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topic}/messages`,
      body: publishBody(MIB),
      ...who,
    });
    t.equal(refused.status, 503, 'a body that does not fit is refused');
    t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with retry-after');
    t.equal((await json(refused)).error.code, 'Unavailable');
    const small = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topic}/messages`,
      body: publishBody(1024),
      ...who,
    });
    t.equal(small.status, 200, 'one that fits is served meanwhile');

    // A chunked body (no Content-Length) is reserved as it comes, and refused past what is left.
    const chunkedBody = publishBody(MIB);
    const chunkedHead = signedHead(wharf, tenant, `${topic}/messages`, chunkedBody).replace(
      /content-length: \d+\r\n/i,
      'transfer-encoding: chunked\r\n',
    );
    const chunked = rawExchange(t, port, chunkedHead);
    for (let at = 0; at < chunkedBody.length && !chunked.socket.destroyed; at += 256 * 1024) {
      const piece = chunkedBody.subarray(at, at + 256 * 1024);
      chunked.socket.write(`${piece.length.toString(16)}\r\n`);
      chunked.socket.write(piece);
      chunked.socket.write('\r\n');
    }
    const chunkedAnswer = await chunked.answer;
    t.equal(chunkedAnswer.status, 503, 'a chunked body past the budget left: 503');

    slow.socket.write(slowBody.subarray(MIB));
    t.equal((await slow.answer).status, 200, 'the stalled publish completes');
    await eventually(
      'the budget to be returned',
      async () => (await bodyBytesInFlight(wharf)) === 0,
    );
    const retried = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topic}/messages`,
      body: publishBody(MIB),
      ...who,
    });
    t.equal(retried.status, 200, 'the refused publish succeeds when retried');

    // A body larger than the whole budget could never be read: 413, not a 503 to retry forever.
    const whole = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topic}/messages`,
      body: publishBody(3 * MIB),
      ...who,
    });
    t.equal(whole.status, 413);
    t.equal((await json(whole)).error.code, 'MessageTooLarge');

    await eventually(
      'the budget to be returned',
      async () => (await bodyBytesInFlight(wharf)) === 0,
    );
  },
);

t.test(
  'past half the body budget, one tenant holds at most its share, however it stalls; others publish on',
  async (t) => {
    // share: a quarter of 8 MiB = 2 MiB, enforced past half (4 MiB); bodies of 1 MiB at most
    const wharf = await startWharf(t, {
      config: { bodiesInFlightBytes: 8 * MIB, bodyLimitBytes: MIB },
    });
    const noisy = await provisionTenant(wharf, { name: 'noisy' });
    const quiet = await provisionTenant(wharf, { name: 'quiet' });
    const port = portOf(wharf.url);
    const publishPath = (who: typeof noisy) =>
      `/v1/instances/${who.instanceId}/topics/orders/messages`;
    for (const who of [noisy, quiet]) {
      const created = await signedFetch(wharf.url, {
        method: 'PUT',
        path: `/v1/instances/${who.instanceId}/topics/orders`,
        body: { messageType: 'NORMAL' },
        ak: who.accessKeyId,
        sk: who.accessKeySecret,
      });
      t.equal(created.status, 201);
    }
    // Four declared bodies that never come, half of them signed with a wrong secret (a caller
    // who has the key id only: its signature waits for the body): half the budget, all noisy's.
    const body = publishBody(MIB - 1024);
    const forged = { ...noisy, accessKeySecret: 'x'.repeat(40) };
    const stalled = [noisy, forged, noisy, forged].map((who) =>
      rawExchange(t, port, signedHead(wharf, who, publishPath(noisy), body)),
    );
    await eventually(
      'the stalled bodies to hold their bytes',
      async () => (await bodyBytesInFlight(wharf)) >= 4 * (MIB - 1024),
    );
    const fifth = await signedFetch(wharf.url, {
      method: 'POST',
      path: publishPath(noisy),
      body,
      ak: noisy.accessKeyId,
      sk: noisy.accessKeySecret,
    });
    t.equal(fifth.status, 429, "past half the budget and the tenant's share: 429");
    t.equal((await json(fifth)).error.code, 'Throttled');
    t.ok(Number(fifth.headers.get('retry-after')) >= 1, 'with retry-after');
    for (let i = 0; i < 3; i++) {
      const other = await signedFetch(wharf.url, {
        method: 'POST',
        path: publishPath(quiet),
        body,
        ak: quiet.accessKeyId,
        sk: quiet.accessKeySecret,
      });
      t.equal(other.status, 200, 'another tenant publishes meanwhile');
    }
    for (const exchange of stalled) exchange.socket.destroy();
    await eventually(
      'the budget to be returned',
      async () => (await bodyBytesInFlight(wharf)) === 0,
    );
  },
);

t.test('a body that stops coming is given up: 400, its bytes returned', async (t) => {
  const wharf = await startWharf(t, { config: { bodyIdleMs: 500 } });
  const tenant = await provisionTenant(wharf);
  const body = publishBody(64 * 1024);
  const path = `/v1/instances/${tenant.instanceId}/topics/orders/messages`;
  const stalled = rawExchange(t, portOf(wharf.url), signedHead(wharf, tenant, path, body));
  stalled.socket.write(body.subarray(0, 1024));
  const answer = await stalled.answer;
  t.equal(answer.status, 400);
  t.match(JSON.parse(answer.body).error.message, /no byte of the request body came for 0.5 s/);
  await eventually('the budget to be returned', async () => (await bodyBytesInFlight(wharf)) === 0);
});

t.test('connections per address are bounded: the N+1th is answered 429', async (t) => {
  const wharf = await startWharf(t, { config: { maxConnectionsPerAddress: 3 } });
  const port = portOf(wharf.url);
  const get = 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';
  const held = [0, 1, 2].map(() => rawExchange(t, port, get));
  for (const exchange of held) t.equal((await exchange.answer).status, 200, 'within the bound');

  const fourth = await rawExchange(t, port, get).answer;
  t.equal(fourth.status, 429, 'the fourth connection is refused');
  t.equal(JSON.parse(fourth.body).error.code, 'Throttled');
  t.ok(Number(fourth.headers['retry-after']) >= 1, 'with retry-after');
  t.equal(fourth.headers.connection, 'close', 'and closed');

  const served = async () => {
    const exchange = rawExchange(t, port, get);
    const { status } = await exchange.answer;
    exchange.socket.destroy();
    return status === 200;
  };
  held[0].socket.destroy();
  await eventually('a slot to free up', served);
  held.forEach((exchange) => exchange.socket.destroy());
  await eventually('every slot to free up', async () =>
    (await Promise.all([served(), served(), served()])).every(Boolean),
  );
  const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  t.match(metrics, /^wharf_connections_refused_total [1-9]/m, 'counted in /metrics');
});

t.test('a refusal answered before its small body came keeps the connection serving', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const port = portOf(wharf.url);
  const base = `/v1/instances/${tenant.instanceId}`;
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const put = (path: string, body: unknown) =>
    signedFetch(wharf.url, { method: 'PUT', path: `${base}${path}`, body, ...who });
  t.equal((await put('/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await put('/groups/g', {})).status, 201);
  // no credentials: refused from the headers, before the 15 bytes are sent
  const small = Buffer.from('{"messages":[]}');
  const exchange = rawExchange(
    t,
    port,
    `POST ${base}/topics/orders/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
      `content-type: application/json\r\ncontent-length: ${small.length}\r\n\r\n`,
  );
  const refused = await exchange.answer;
  t.equal(refused.status, 401);
  t.not(refused.headers.connection, 'close', 'kept alive');
  // the client sends its body late, then, on the same connection, a receive that waits past the
  // time a refused large body's connection is kept
  let next = '';
  exchange.socket.removeAllListeners('data');
  const answered = new Promise<string>((resolve, reject) => {
    exchange.socket.on('data', (chunk: Buffer) => {
      next += chunk.toString('latin1');
      if (next.includes('\r\n\r\n')) resolve(next);
    });
    exchange.socket.once('close', () => reject(new Error('the connection was closed')));
  });
  const receive = Buffer.from(JSON.stringify({ waitSeconds: LINGER_MS / 1000 + 2 }));
  exchange.socket.write(small);
  exchange.socket.write(
    signedHead(wharf, tenant, `${base}/topics/orders/groups/g/receive`, receive),
  );
  exchange.socket.write(receive);
  t.match(await answered, /^HTTP\/1\.1 200 /, 'the receive is answered when its wait ends');
});

t.test('a refused large body is read and dropped: the connection stays whole', async (t) => {
  const wharf = await startWharf(t);
  const port = portOf(wharf.url);
  // A client that sends its body after the answer came (fetch writes the whole body before it
  // reads): a connection closed over the unread rest is reset, and the client sees EPIPE or
  // ECONNRESET instead of the answer it was sent. Each case sends its body once the answer is
  // in, then a second request on the same connection.
  const cases = [
    {
      what: 'a body over the limit',
      head:
        `POST /admin/v1/tenants HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${wharf.adminToken}\r\n` +
        `content-type: application/json\r\ncontent-length: ${8 * MIB + 10}\r\n\r\n`,
      bytes: 8 * MIB + 10,
      status: 413,
    },
    {
      what: 'a wrong operator token',
      head:
        'POST /admin/v1/tenants HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer not-the-token-0123\r\n' +
        `content-type: application/json\r\ncontent-length: ${4 * MIB}\r\n\r\n`,
      bytes: 4 * MIB,
      status: 403,
    },
  ];
  for (const { what, head, bytes, status } of cases) {
    const exchange = rawExchange(t, port, head);
    const refused = await exchange.answer;
    t.equal(refused.status, status, `${what}: ${status}`);
    t.not(refused.headers.connection, 'close', `${what}: kept alive`);
    exchange.socket.removeAllListeners('data');
    let next = '';
    const answered = new Promise<string>((resolve, reject) => {
      exchange.socket.on('data', (chunk: Buffer) => {
        next += chunk.toString('latin1');
        if (next.includes('\r\n\r\n')) resolve(next);
      });
      exchange.socket.once('close', () => reject(new Error(`${what}: the connection was closed`)));
    });
    exchange.socket.write(Buffer.alloc(bytes, 0x20));
    exchange.socket.write(
      `GET /admin/v1/tenants HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${wharf.adminToken}\r\n\r\n`,
    );
    t.match(await answered, /^HTTP\/1\.1 200 /, `${what}: the next request is served`);
  }
});
