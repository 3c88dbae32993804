// Bad input on the MQ HTTP routes: every refusal is the protocol's XML `Error` (Code, Message,
// RequestId, HostId) with its status, `text/xml` and `x-mq-request-id`, whatever stage refused
// it (credentials, framework, body, route); the SDK gets a thrown error with that Code.
import t, { type Test } from 'tap';
import {
  mqClient,
  mqErrorOf,
  mqFetch,
  publishXml,
  putResource,
  type MqAnswer,
} from '../helpers/mq-http-sdk.js';
import { portOf, rawExchange } from '../helpers/raw-http.js';
import { adminFetch, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';

function expectMqError(t: Test, answer: MqAnswer, status: number, code: string, what: string) {
  t.equal(answer.status, status, `${what}: status`);
  t.equal(answer.code, code, `${what}: code`);
  t.ok(answer.contentType.startsWith('text/xml'), `${what}: XML`);
  t.ok(answer.requestId, `${what}: x-mq-request-id`);
  t.match(answer.body, /<RequestId>[^<]+<\/RequestId>/, `${what}: RequestId in the body`);
  t.match(answer.body, /<Message>[^<]*<\/Message>/, `${what}: Message in the body`);
}

t.test('credentials, digest, XML and parameters are refused in the protocol’s shape', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf, { quotas: { maxMessageBytes: 1024 } });
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const publish = `/topics/orders/messages?ns=${tenant.instanceId}`;
  const consume = `/topics/orders/messages?consumer=g&ns=${tenant.instanceId}`;
  const post = (extra: Partial<Parameters<typeof mqFetch>[1]> = {}) =>
    mqFetch(wharf.url, {
      method: 'POST',
      resource: publish,
      body: publishXml('hi'),
      ...who,
      ...extra,
    });

  t.equal((await post()).status, 201, 'the well-formed request goes through');

  const cases: [Partial<Parameters<typeof mqFetch>[1]>, number, string, string][] = [
    [
      { headers: { authorization: undefined } },
      400,
      'MissingAuthorizationHeader',
      'no authorization',
    ],
    [
      { headers: { authorization: 'MQ nonsense' } },
      400,
      'InvalidAuthorizationHeader',
      'malformed authorization',
    ],
    [{ headers: { date: undefined } }, 400, 'MissingDateHeader', 'no date'],
    [{ headers: { date: 'yesterday-ish' } }, 400, 'InvalidDateHeader', 'unparseable date'],
    [{ date: new Date(Date.now() - 20 * 60_000) }, 408, 'TimeExpired', 'date 20 minutes off'],
    [{ sk: 'not-the-secret' }, 403, 'SignatureDoesNotMatch', 'wrong secret'],
    [{ ak: 'WKNOSUCHKEY000000000' }, 403, 'InvalidAccessKeyId', 'unknown key'],
    [
      { headers: { 'x-mq-version': '2099-01-01' } },
      403,
      'SignatureDoesNotMatch',
      'an x-mq header changed after signing',
    ],
    [
      { headers: { 'content-md5': 'AAAA' } },
      403,
      'SignatureDoesNotMatch',
      'content-md5 changed after signing',
    ],
    [{ body: '<Message><MessageBody>x</MessageBody>' }, 400, 'MalformedXML', 'unclosed element'],
    [{ body: '{"messages":[]}' }, 400, 'MalformedXML', 'JSON body'],
    [
      { body: '<!DOCTYPE a [<!ENTITY x "y">]><Message><MessageBody>&x;</MessageBody></Message>' },
      400,
      'MalformedXML',
      'DOCTYPE',
    ],
    [
      { body: '<Message><MessageBody>a&nbsp;b</MessageBody></Message>' },
      400,
      'MalformedXML',
      'an HTML entity (XML defines five)',
    ],
    [
      { body: '<Message><MessageBody>a&foo;b</MessageBody></Message>' },
      400,
      'MalformedXML',
      'an undefined entity',
    ],
    [
      {
        body: Buffer.concat([
          Buffer.from('<Message><MessageBody>'),
          Buffer.from([0xff, 0xfe]),
          Buffer.from('</MessageBody></Message>'),
        ]),
      },
      400,
      'MalformedXML',
      'bytes that are not UTF-8',
    ],
    [
      { body: '<Message><MessageTag>T</MessageTag></Message>' },
      400,
      'InvalidArgument',
      'no MessageBody',
    ],
    [{ body: publishXml('x'.repeat(2048)) }, 413, 'MessageTooLarge', 'over maxMessageBytes'],
    [{ body: publishXml('x', 'bad tag') }, 400, 'InvalidArgument', 'tag with a space'],
    [
      { resource: '/topics/orders/messages?ns=MQ_INST_AAAAAAAAAAAAAAAAAAAA' },
      404,
      'TopicNotExist',
      'another instance',
    ],
  ];
  for (const [extra, status, code, what] of cases) {
    expectMqError(t, await post(extra), status, code, what);
  }

  // content-md5 signed but not the body's: the body is checked against it once it is in
  expectMqError(
    t,
    await post({ contentMd5: 'NTcwNDg0Y2FlZDM0YzQzZTNiNTc5NzY3NjExM2QyYTI=' }),
    400,
    'InvalidDigest',
    'content-md5 not the body’s',
  );
  t.equal((await post({ contentMd5: null })).status, 201, 'content-md5 is optional (Python)');

  const get = (resource: string) => mqFetch(wharf.url, { method: 'GET', resource, ...who });
  for (const [query, what] of [
    ['&numOfMessages=0', 'numOfMessages 0'],
    ['&numOfMessages=17', 'numOfMessages 17'],
    ['&numOfMessages=x', 'numOfMessages not a number'],
    ['&numOfMessages=1&waitseconds=31', 'waitseconds 31'],
    ['&numOfMessages=1&trans=commit', 'trans=commit on a GET'],
    ['&numOfMessages=1&tag=a%20b', 'tag with a space'],
  ]) {
    expectMqError(t, await get(consume + query), 400, 'InvalidArgument', what);
  }
  expectMqError(
    t,
    await get(`/topics/orders/messages?ns=${tenant.instanceId}&numOfMessages=1`),
    400,
    'InvalidArgument',
    'no consumer',
  );
  expectMqError(
    t,
    await get(`${consume}&tag=NoSuchTag&numOfMessages=1`),
    404,
    'MessageNotExist',
    'nothing to consume',
  );

  const del = (body: string, resource = consume) =>
    mqFetch(wharf.url, { method: 'DELETE', resource, body, ...who });
  expectMqError(t, await del('<ReceiptHandles/>'), 400, 'InvalidArgument', 'no handle');
  expectMqError(t, await del('<ReceiptHandles><ReceiptHandle>h'), 400, 'MalformedXML', 'cut off');
  expectMqError(
    t,
    await del(
      '<ReceiptHandles><ReceiptHandle>a</ReceiptHandle><ReceiptHandle>b</ReceiptHandle></ReceiptHandles>',
      `${consume}&trans=commit`,
    ),
    400,
    'InvalidArgument',
    'commit of two handles',
  );

  // the framework's own refusals on these paths are XML too
  expectMqError(
    t,
    await mqFetch(wharf.url, { method: 'PUT', resource: publish, body: publishXml('x'), ...who }),
    405,
    'MethodNotAllowed',
    'PUT',
  );
  expectMqError(t, await get('/topics/orders'), 404, 'NotFound', 'no such route');
  // an endpoint configured with a path prefix: not routed, answered in the protocol's shape
  expectMqError(t, await get(`/prefix${consume}`), 404, 'NotFound', 'a path prefix');
});

t.test('permissions, suspension and quotas are the /v1 ones, answered in XML', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf, {
    quotas: { publishPerSecond: 1 },
    permissions: (instanceId) => [{ instance: instanceId, actions: ['consume'] }],
  });
  const full = await provisionTenant(wharf, { quotas: { publishPerSecond: 1 } });
  await putResource(t, wharf, full, '/topics/orders', { messageType: 'NORMAL' });
  const client = mqClient(wharf, tenant);
  // the consume-only key of the first tenant cannot publish (its instance has no topic either:
  // permission is checked first)
  t.equal(
    (await mqErrorOf(client.getProducer(tenant.instanceId, 'orders').publishMessage('x'))).Code,
    'AccessDenied',
  );
  const producer = mqClient(wharf, full).getProducer(full.instanceId, 'orders');
  t.equal((await producer.publishMessage('one')).code, 201);
  const throttled = await mqErrorOf(
    (async () => {
      for (let i = 0; i < 5; i++) await producer.publishMessage('more');
    })(),
  );
  t.equal(throttled.Code, 'QpsLimitExceeded', 'over publishPerSecond');

  const suspend = await adminFetch(wharf, 'PATCH', `/admin/v1/tenants/${full.tenantId}`, {
    status: 'suspended',
  });
  t.equal(suspend.status, 200);
  t.equal((await mqErrorOf(producer.publishMessage('x'))).Code, 'AccessDenied', 'suspended');
});

t.test(
  'what the protocol cannot say is refused: a broadcasting group, an ambiguous instance',
  async (t) => {
    const wharf = await startWharf(t);
    const tenant = await provisionTenant(wharf);
    await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
    await putResource(t, wharf, tenant, '/groups/all', { deliveryMode: 'BROADCASTING' });
    const client = mqClient(wharf, tenant);
    const broadcast = await mqErrorOf(
      client.getConsumer(tenant.instanceId, 'orders', 'all').consumeMessage(1),
    );
    t.equal(broadcast.Code, 'InvalidArgument', 'no consumer id in this protocol');

    const second = await signedFetch(wharf.url, {
      method: 'POST',
      path: '/v1/instances',
      body: { name: 'second' },
      ak: tenant.accessKeyId,
      sk: tenant.accessKeySecret,
    });
    t.equal(second.status, 201);
    const noNs = await mqErrorOf(client.getProducer('', 'orders').publishMessage('x'));
    t.equal(noNs.Code, 'InvalidArgument', 'two instances: ns is required');
  },
);

t.test('a body the SDK cannot encode (]]> inside) is MalformedXML, never altered', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const client = mqClient(wharf, tenant);
  // the SDK wraps the body in CDATA, which `]]>` ends early: malformed, not stored altered
  const err = await mqErrorOf(
    client.getProducer(tenant.instanceId, 'orders').publishMessage('a]]>b'),
  );
  t.equal(err.Code, 'MalformedXML');
  // escaped as Java and Go send it, the same body goes through
  const escaped = await mqFetch(wharf.url, {
    method: 'POST',
    resource: `/topics/orders/messages?ns=${tenant.instanceId}`,
    body: '<Message><MessageBody>a]]&gt;b</MessageBody></Message>',
    ak: tenant.accessKeyId,
    sk: tenant.accessKeySecret,
  });
  t.equal(escaped.status, 201);
  const got = await client.getConsumer(tenant.instanceId, 'orders', 'g').consumeMessage(1, 5);
  t.equal(got.body[0].MessageBody, 'a]]>b', 'and reaches the SDK intact');
  // and the gateway still answers
  t.equal((await client.getProducer(tenant.instanceId, 'orders').publishMessage('ok')).code, 201);
});

t.test('a property named __proto__ is refused with InvalidArgument, not dropped', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  // as the Java and Go SDKs send it (the Node SDK's own object loses the key before sending)
  const publish = (properties: string) =>
    mqFetch(wharf.url, {
      method: 'POST',
      resource: `/topics/orders/messages?ns=${tenant.instanceId}`,
      body: `<Message><MessageBody>x</MessageBody><Properties>${properties}</Properties></Message>`,
      ...who,
    });
  const refused = await publish('a:1|__proto__:polluted');
  expectMqError(t, refused, 400, 'InvalidArgument', '__proto__');
  t.match(refused.body, /__proto__/, 'the message names the property');
  const nothing = await mqFetch(wharf.url, {
    method: 'GET',
    resource: `/topics/orders/messages?consumer=g&ns=${tenant.instanceId}&numOfMessages=1`,
    ...who,
  });
  t.equal(nothing.code, 'MessageNotExist', 'nothing was stored');
  t.equal((await publish('a:1|proto:ok')).status, 201, 'other names go through');
});

t.test('bad credentials are answered from the headers, before an 8 MiB body', async (t) => {
  const wharf = await startWharf(t);
  const port = portOf(wharf.url);
  // the head only: a server that waited for the body would never answer
  const { answer: early } = rawExchange(
    t,
    port,
    `POST /topics/orders/messages?ns=x HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
      `content-type: text/xml;charset=utf-8\r\ncontent-length: ${8 * 1024 * 1024 - 1024}\r\n` +
      `date: ${new Date().toUTCString()}\r\nauthorization: MQ WKNOSUCHKEY000000000:AAAA\r\n\r\n`,
  );
  const answer = await early;
  t.equal(answer.status, 403, '403 without the body');
  t.match(answer.body, /<Code>InvalidAccessKeyId<\/Code>/);

  const { answer: refused } = rawExchange(
    t,
    port,
    `POST /topics/orders/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
      `content-length: ${9 * 1024 * 1024}\r\n\r\n`,
  );
  const tooLarge = await refused;
  t.equal(tooLarge.status, 400, 'no credentials: refused first');
  t.match(tooLarge.body, /<Code>MissingAuthorizationHeader<\/Code>/);
});

t.test('a HEAD on the consume URL is refused and takes no message', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const client = mqClient(wharf, tenant);
  await client.getProducer(tenant.instanceId, 'orders').publishMessage('kept');
  for (const resource of [
    `/topics/orders/messages?consumer=g&ns=${tenant.instanceId}`,
    `/topics/orders/messages?consumer=g&ns=${tenant.instanceId}&trans=pop`,
  ]) {
    const head = await mqFetch(wharf.url, { method: 'HEAD', resource, ...who });
    t.equal(head.status, 405, `HEAD ${resource}: 405`);
  }
  const got = await client.getConsumer(tenant.instanceId, 'orders', 'g').consumeMessage(16, 1);
  t.match(got.body, [{ MessageBody: 'kept', ConsumedTimes: 1 }], 'first delivered now');
});

t.test('an SDK whose endpoint ends in a slash (it sends //topics/…) is served', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const client = mqClient({ url: `${wharf.url}/` }, tenant);
  const sent = await client.getProducer(tenant.instanceId, 'orders').publishMessage('slash');
  t.equal(sent.code, 201);
  const consumer = client.getConsumer(tenant.instanceId, 'orders', 'g');
  const got = await consumer.consumeMessage(16, 5);
  t.match(got.body, [{ MessageBody: 'slash' }]);
  const acked = await consumer.ackMessage(got.body.map((m) => m.ReceiptHandle));
  t.equal(acked.code, 204);
});

t.test('the HTTP parser’s own refusals of an MQ route are XML too', async (t) => {
  const wharf = await startWharf(t);
  const port = portOf(wharf.url);
  const consume = 'GET /topics/orders/messages?consumer=g&ns=i&numOfMessages=1 HTTP/1.1\r\nhost: x';
  const huge = await rawExchange(t, port, `${consume}\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)
    .answer;
  t.equal(huge.status, 431, 'headers over 16 KiB');
  t.match(huge.headers['content-type'], /^text\/xml/);
  t.match(huge.body, /<Code>HeadersTooLarge<\/Code>/);
  t.ok(huge.headers['x-mq-request-id'], 'x-mq-request-id');
  t.match(huge.body, new RegExp(`<RequestId>${huge.headers['x-mq-request-id']}</RequestId>`));

  // an SDK whose endpoint has a path prefix: its x-mq-version says so
  const publish =
    'POST /prefix/topics/orders/messages?ns=i HTTP/1.1\r\nhost: x\r\nx-mq-version: 2015-06-06';
  const badLength = await rawExchange(t, port, `${publish}\r\ncontent-length: abc\r\n\r\n`).answer;
  t.equal(badLength.status, 400, 'a malformed content-length');
  t.match(badLength.headers['content-type'], /^text\/xml/);
  t.match(badLength.body, /<Code>InvalidArgument<\/Code>/);

  // the /v1 routes keep their JSON
  const v1 = await rawExchange(
    t,
    port,
    `POST /v1/instances HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n`,
  ).answer;
  t.equal(v1.status, 400);
  t.match(v1.body, /"code":"InvalidArgument"/);
});
