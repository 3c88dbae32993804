import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { adminFetch, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';

/** Sends raw bytes and returns what the server answers before closing (or 2 s). */
function rawRequest(url: string, bytes: Buffer | string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('error', () => resolve(out));
    socket.on('close', () => resolve(out));
    socket.setTimeout(2000, () => socket.destroy());
    socket.write(bytes);
  });
}

async function expectError(t: Test, res: Response, status: number, code: string, what: string) {
  t.equal(res.status, status, what);
  const body = (await res.json()) as {
    error: { code: string; message: string; requestId: string };
  };
  t.equal(body.error.code, code, what);
  t.equal(body.error.requestId, res.headers.get('x-request-id'), `${what}: request id`);
}

t.test('bad input is refused in the error shape and never crashes the process', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const topics = `/v1/instances/${tenant.instanceId}/topics`;
  const put = (path: string, body: unknown, headers?: Record<string, string>) =>
    signedFetch(wharf.url, { method: 'PUT', path, body, ...who, ...(headers ? { headers } : {}) });

  await expectError(
    t,
    await put(`${topics}/a`, '{"messageType":'),
    400,
    'InvalidArgument',
    'malformed JSON',
  );
  await expectError(
    t,
    await put(`${topics}/a`, '[1,2]'),
    400,
    'InvalidArgument',
    'JSON not an object',
  );
  await expectError(
    t,
    await put(`${topics}/a`, { messageType: 1 }),
    400,
    'InvalidArgument',
    'number for a string',
  );
  await expectError(
    t,
    await put(`${topics}/a`, { messageType: 'NORMAL', queueCount: '5' }),
    400,
    'InvalidArgument',
    'string for a number',
  );
  await expectError(
    t,
    await put(`${topics}/a`, { messageType: 'NORMAL', queueCount: null }),
    400,
    'InvalidArgument',
    'null',
  );
  await expectError(
    t,
    await put(`${topics}/a`, { messageType: 'NORMAL', queueCount: 65 }),
    400,
    'InvalidArgument',
    'out of range',
  );
  await expectError(
    t,
    await put(`${topics}/a`, { messageType: 'OTHER' }),
    400,
    'InvalidArgument',
    'not in the enum',
  );
  await expectError(t, await put(`${topics}/a`, {}), 400, 'InvalidArgument', 'missing field');
  const ignored = await put(`${topics}/ok`, { messageType: 'NORMAL', surprise: true });
  t.equal(ignored.status, 201, 'unknown fields are ignored');
  // a property named __proto__ is refused, neither merged nor dropped unnoticed: in a message's
  // properties it would be a user's property lost
  await expectError(
    t,
    await put(`${topics}/proto`, '{"messageType":"NORMAL","__proto__":{"x":1}}'),
    400,
    'InvalidArgument',
    '__proto__ in a resource',
  );
  t.equal((await put(`${topics}/ok2`, { messageType: 'NORMAL' })).status, 201);
  const publish = (body: string) =>
    signedFetch(wharf.url, { method: 'POST', path: `${topics}/ok2/messages`, body, ...who });
  const refused = await publish('{"messages":[{"body":"a","properties":{"__proto__":"x"}}]}');
  const { error } = (await refused.clone().json()) as { error: { message: string } };
  await expectError(t, refused, 400, 'InvalidArgument', '__proto__ in message properties');
  t.match(error.message, /__proto__/, 'the message names the property');
  t.equal((await publish('{"messages":[{"body":"a","properties":{"proto":"x"}}]}')).status, 200);
  // text that is not Unicode is refused, never stored changed (U+FFFD in its place: two property
  // names made one, a key no query finds)
  await expectError(
    t,
    await publish('{"messages":[{"body":"x","properties":{"\\ud800":"one","\\udc00":"two"}}]}'),
    400,
    'InvalidArgument',
    'lone surrogates in property names',
  );
  await expectError(
    t,
    await publish('{"messages":[{"body":"x","keys":["k\\uD800"]}]}'),
    400,
    'InvalidArgument',
    'a lone surrogate in a key',
  );
  await expectError(
    t,
    await publish('{"messages":[{"body":"\\udfff"}]}'),
    400,
    'InvalidArgument',
    'a lone low surrogate in a body',
  );
  const invalidUtf8 = Buffer.concat([
    Buffer.from('{"messages":[{"body":"'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}]}'),
  ]);
  await expectError(
    t,
    await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topics}/ok2/messages`,
      body: invalidUtf8,
      ...who,
    }),
    400,
    'InvalidArgument',
    'bytes that are not UTF-8',
  );
  t.equal(
    (await publish('{"messages":[{"body":"\\ud83d\\ude00 \\\\ud800","tag":"\\u00e9"}]}')).status,
    200,
    'a surrogate pair, and an escaped backslash before "ud800", are text',
  );

  await expectError(
    t,
    await put(`${topics}/a`, 'messageType=NORMAL', {
      'content-type': 'application/x-www-form-urlencoded',
    }),
    415,
    'UnsupportedMediaType',
    'form body',
  );
  await expectError(
    t,
    await put(`${topics}/a`, '{}', { 'content-type': 'text/plain' }),
    415,
    'UnsupportedMediaType',
    'text/plain',
  );
  await expectError(
    t,
    await put(`${topics}/a`, '{}', { 'content-type': 'application/json; charset=latin1' }),
    415,
    'UnsupportedMediaType',
    'latin1',
  );
  await expectError(
    t,
    await put(`${topics}/a`, '{}', { 'content-encoding': 'gzip' }),
    415,
    'UnsupportedMediaType',
    'gzip',
  );
  const vendor = await put(`${topics}/vnd`, '{"messageType":"NORMAL"}', {
    'content-type': 'application/vnd.wharf+json; charset=utf-8',
  });
  t.equal(vendor.status, 201, '+json types are JSON');

  await expectError(
    t,
    await put(`${topics}/${'a'.repeat(65)}`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    'name over 64',
  );
  await expectError(
    t,
    await put(`${topics}/${'a'.repeat(600)}`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    'name over the param limit',
  );
  await expectError(
    t,
    await put(`${topics}/rmq_sys_x`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    'reserved prefix',
  );
  await expectError(
    t,
    await put(`${topics}/-a`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    'leading dash',
  );
  await expectError(
    t,
    await put(`${topics}/a%2Fb`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    '%2F',
  );
  await expectError(
    t,
    await put(`${topics}/caf%C3%A9`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    'unicode',
  );
  await expectError(
    t,
    await put(`${topics}/%zz`, { messageType: 'NORMAL' }),
    400,
    'InvalidArgument',
    'bad percent-encoding',
  );
  // fetch resolves dot segments itself: send these raw
  const encodedDots = await rawRequest(
    wharf.url,
    `PUT ${topics}/%2e%2e HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n`,
  );
  t.match(encodedDots, /^HTTP\/1.1 400/, 'encoded .. segment');
  t.match(encodedDots, /"code":"InvalidArgument"/);
  const rawDots = await rawRequest(
    wharf.url,
    'GET /v1/instances/../../admin/v1/tenants HTTP/1.1\r\nhost: x\r\n\r\n',
  );
  t.match(rawDots, /^HTTP\/1.1 400/, 'raw .. segments');
  const empty = await fetch(`${wharf.url}/v1//instances`);
  await expectError(t, empty, 400, 'InvalidArgument', 'empty segment');
  for (const path of ['/v1/instances/', '/admin/v1/tenants/']) {
    await expectError(t, await fetch(`${wharf.url}${path}`), 400, 'InvalidArgument', path);
  }

  const rawUnicode = await rawRequest(
    wharf.url,
    Buffer.concat([
      Buffer.from('GET /v1/instances/'),
      Buffer.from('é', 'utf8'),
      Buffer.from(' HTTP/1.1\r\nhost: x\r\n\r\n'),
    ]),
  );
  t.match(rawUnicode, /^HTTP\/1.1 4\d\d/, 'raw non-ASCII in the target');
  t.match(rawUnicode, /"code":"/);

  const huge = await rawRequest(
    wharf.url,
    `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
  );
  t.match(huge, /^HTTP\/1.1 431/, 'headers over 16 KiB');
  t.match(huge, /"code":"HeadersTooLarge"/);
  t.match(huge, /x-request-id: /);

  const noHost = await rawRequest(wharf.url, 'GET /v1/instances HTTP/1.1\r\n\r\n');
  t.match(noHost, /^HTTP\/1.1 400/, 'an HTTP/1.1 request without Host');
  t.match(noHost, /"code":"InvalidArgument"/, 'in the error shape');
  t.match(noHost, /x-request-id: /);
  const oldHttp = await rawRequest(wharf.url, 'GET /healthz HTTP/1.0\r\n\r\n');
  t.match(oldHttp, /^HTTP\/1.1 200/, 'HTTP/1.0 needs none');

  const garbage = await rawRequest(wharf.url, 'NOT HTTP AT ALL\r\n\r\n');
  t.match(garbage, /^HTTP\/1.1 400/, 'broken HTTP');

  const badLength = await rawRequest(
    wharf.url,
    'POST /v1/instances HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n',
  );
  t.match(badLength, /^HTTP\/1.1 400/, 'bad content-length');

  const longUrl = await fetch(`${wharf.url}/v1/instances?x=${'a'.repeat(9000)}`);
  await expectError(t, longUrl, 414, 'UriTooLong', 'URL over 8 KiB');

  const big = await signedFetch(wharf.url, {
    method: 'POST',
    path: '/v1/instances',
    body: JSON.stringify({ name: 'x', pad: 'a'.repeat(9 * 1024 * 1024) }),
    ...who,
  });
  await expectError(t, big, 413, 'MessageTooLarge', 'body over 8 MiB');

  await expectError(t, await fetch(`${wharf.url}/nope`), 404, 'NotFound', 'unknown route');
  const notAllowed = await fetch(`${wharf.url}${topics}/a`, { method: 'POST' });
  await expectError(t, notAllowed, 405, 'MethodNotAllowed', 'known path, other method');
  t.equal(notAllowed.headers.get('allow'), 'GET, HEAD, PUT, DELETE');

  const given = await fetch(`${wharf.url}/healthz`, {
    headers: { 'x-request-id': 'trace-123.abc' },
  });
  t.equal(given.headers.get('x-request-id'), 'trace-123.abc', 'a sane client id is kept');
  const insane = await fetch(`${wharf.url}/healthz`, {
    headers: { 'x-request-id': 'a b<script>' },
  });
  t.not(insane.headers.get('x-request-id'), 'a b<script>', 'an odd one is replaced');
  t.match(insane.headers.get('x-request-id'), /^[0-9a-f-]{36}$/);

  const alive = await fetch(`${wharf.url}/healthz`);
  t.equal(alive.status, 200, 'still alive');
});

t.test('service endpoints', async (t) => {
  const wharf = await startWharf(t);
  t.same(await (await fetch(`${wharf.url}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${wharf.url}/readyz`);
  t.equal(ready.status, 200, await ready.text());
  const metrics = await fetch(`${wharf.url}/metrics`, {
    headers: { authorization: `Bearer ${wharf.adminToken}` },
  });
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /text\/plain/);
  t.match(
    await metrics.text(),
    /wharf_http_requests_total\{method="GET",route="\/readyz",status="200"\} 1/,
  );
  t.equal((await fetch(`${wharf.url}/metrics`)).status, 401);
  const docs = await fetch(`${wharf.url}/docs/`);
  t.equal(docs.status, 200);
  t.match(await docs.text(), /swagger/i);
  const doc = (await (await fetch(`${wharf.url}/openapi.json`)).json()) as { openapi: string };
  t.equal(doc.openapi, '3.1.0');

  await wharf.broker.close();
  const notReady = await fetch(`${wharf.url}/readyz`);
  t.equal(notReady.status, 503);
  t.equal(((await notReady.json()) as { error: { code: string } }).error.code, 'Unavailable');
  t.ok(notReady.headers.get('retry-after'));
  wharf.meta.redis.disconnect();
  const noRedis = await fetch(`${wharf.url}/readyz`);
  t.equal(noRedis.status, 503);
  const listing = await fetch(`${wharf.url}/admin/v1/tenants`, {
    headers: { authorization: `Bearer ${wharf.adminToken}` },
  });
  t.equal(listing.status, 503, 'Redis unreachable is retriable, not a 500');
  t.equal(((await listing.json()) as { error: { code: string } }).error.code, 'Unavailable');
});

t.test('an over-long id is as malformed as any other: the 404 of an unknown one', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const instance = `/v1/instances/${tenant.instanceId}`;
  const call = (method: string, path: string, body?: unknown) =>
    signedFetch(wharf.url, { method, path, ...(body === undefined ? {} : { body }), ...who });
  t.equal((await call('PUT', `${instance}/topics/tx`, { messageType: 'TRANSACTION' })).status, 201);
  t.equal((await call('PUT', `${instance}/topics/n`, { messageType: 'NORMAL' })).status, 201);
  // past the router's old 512 (then a 400), within the 8 KiB request target
  const long = 'A'.repeat(4000);
  await expectError(
    t,
    await call('GET', `/v1/instances/${'A'.repeat(9000)}`),
    414,
    'UriTooLong',
    'an id past the 8 KiB target',
  );
  await expectError(
    t,
    await call('GET', `/v1/instances/${long}`),
    404,
    'InstanceNotFound',
    'instance',
  );
  await expectError(
    t,
    await call('GET', `${instance}/topics/n/messages/${long}`),
    404,
    'MessageNotFound',
    'message',
  );
  await expectError(
    t,
    await call('DELETE', `${instance}/topics/n/messages/${long}`),
    404,
    'MessageNotFound',
    'message to cancel',
  );
  await expectError(
    t,
    await call('POST', `${instance}/topics/tx/transactions/${long}/commit`),
    404,
    'TransactionNotFound',
    'transaction',
  );
  await expectError(
    t,
    await adminFetch(wharf, 'GET', `/admin/v1/tenants/${long}`),
    404,
    'TenantNotFound',
    'tenant',
  );
  await expectError(
    t,
    await adminFetch(wharf, 'GET', `/admin/v1/tenants/${long}/usage`),
    404,
    'TenantNotFound',
    'tenant usage',
  );
  t.equal(
    (await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}/access-keys/${long}`))
      .status,
    404,
    'access key',
  );

  // an over-long receipt handle is a malformed one: its own result in an ack (the others are
  // acked), the whole answer of a visibility change
  t.equal((await call('PUT', `${instance}/groups/g`, {})).status, 201);
  t.equal(
    (await call('POST', `${instance}/topics/n/messages`, { messages: [{ body: 'x' }] })).status,
    200,
  );
  const received = await call('POST', `${instance}/topics/n/groups/g/receive`, { waitSeconds: 5 });
  const [message] = ((await received.json()) as { messages: { receiptHandle: string }[] }).messages;
  const acked = await call('POST', `${instance}/topics/n/groups/g/ack`, {
    receiptHandles: [long, message.receiptHandle],
  });
  t.equal(acked.status, 200);
  t.same(await acked.json(), {
    results: [
      { receiptHandle: long, ok: false, code: 'InvalidReceiptHandle' },
      { receiptHandle: message.receiptHandle, ok: true },
    ],
  });
  await expectError(
    t,
    await call('POST', `${instance}/topics/n/groups/g/visibility`, {
      receiptHandle: long,
      invisibleSeconds: 0,
    }),
    400,
    'InvalidReceiptHandle',
    'visibility of an over-long handle',
  );
});
