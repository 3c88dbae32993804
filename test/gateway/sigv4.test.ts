import t from 'tap';
import aws4 from 'aws4';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from './sha256.js';
import {
  EMPTY_SHA256,
  canonicalHeaders,
  canonicalQuery,
  canonicalUri,
  parseAmzDate,
  parseAuthorization,
  sha256Hex,
  signingKey,
  verifySignature,
} from '../../src/gateway/sigv4.js';

const AK = 'WKAAAAAAAAAAAAAAAAAA';
const SK = 'secret-key-0123456789';

function rawHeadersOf(headers: Record<string, string>): string[] {
  return Object.entries(headers).flatMap(([k, v]) => [k, String(v)]);
}

t.test('canonical URI resolves dot segments and encodes each segment again', async (t) => {
  t.equal(canonicalUri('/'), '/');
  t.equal(canonicalUri(''), '/');
  t.equal(canonicalUri('/v1/instances/abc'), '/v1/instances/abc');
  t.equal(canonicalUri('/a/./b/../c'), '/a/c');
  t.equal(canonicalUri('/a//b/'), '/a/b/');
  t.equal(canonicalUri('/a%2Fb'), '/a%252Fb');
  t.equal(canonicalUri('/caf%C3%A9'), '/caf%25C3%25A9');
  t.equal(canonicalUri("/a:b!'()*"), '/a%3Ab%21%27%28%29%2A');
  t.equal(canonicalUri('/..'), '/');
});

t.test('canonical query decodes, re-encodes (RFC 3986) and sorts', async (t) => {
  t.equal(canonicalQuery(''), '');
  t.equal(canonicalQuery('b=2&a=1'), 'a=1&b=2');
  t.equal(canonicalQuery('a=2&a=1'), 'a=1&a=2');
  t.equal(canonicalQuery('key=a+b'), 'key=a%20b');
  t.equal(canonicalQuery('key=a%2Bb&flag'), 'flag=&key=a%2Bb');
  t.equal(canonicalQuery('x=%E0%A4%A'), 'x=%25E0%25A4%25A');
  t.equal(canonicalQuery('&&a=1&'), 'a=1');
});

t.test('canonical headers trim, collapse spaces and join repeats with a comma', async (t) => {
  t.equal(
    canonicalHeaders(
      ['Host', 'h', 'X-Amz-Date', 'd', 'X-A', ' 1  2 ', 'x-a', '3'],
      ['host', 'x-a', 'x-amz-date'],
    ),
    'host:h\nx-a:1 2,3\nx-amz-date:d\n',
  );
  t.equal(canonicalHeaders([], ['host']), 'host:\n');
});

t.test('x-amz-date parsing refuses what does not round-trip', async (t) => {
  t.equal(parseAmzDate('20250102T030405Z'), Date.UTC(2025, 0, 2, 3, 4, 5));
  t.ok(Number.isNaN(parseAmzDate('20250231T000000Z')));
  t.ok(Number.isNaN(parseAmzDate('20270006T164521Z')), 'month 00 (not the December before)');
  t.ok(Number.isNaN(parseAmzDate('20251301T000000Z')));
  t.ok(Number.isNaN(parseAmzDate('20250102T250000Z')));
  t.ok(Number.isNaN(parseAmzDate('20250102T006000Z')));
  t.ok(Number.isNaN(parseAmzDate('20250102T000060Z')));
  t.ok(Number.isNaN(parseAmzDate('2025-01-02T03:04:05Z')));
  t.ok(Number.isNaN(parseAmzDate('')));
});

t.test('Authorization parsing names what is wrong', async (t) => {
  const good = `AWS4-HMAC-SHA256 Credential=${AK}/20250102/local/mq/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`;
  const parsed = parseAuthorization(good);
  t.same(parsed, {
    accessKeyId: AK,
    date: '20250102',
    region: 'local',
    service: 'mq',
    scope: '20250102/local/mq/aws4_request',
    signedHeaders: ['host', 'x-amz-date'],
    signature: 'a'.repeat(64),
  });
  const bad = [
    'Basic abc',
    'AWS4-HMAC-SHA256 ',
    `AWS4-HMAC-SHA256 Credential=${AK}/2025/local/mq/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20250102/local/mq/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20250102/local/mq/aws4_request, SignedHeaders=x-amz-date, Signature=${'a'.repeat(64)}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20250102/local/mq/aws4_request, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20250102/local/mq/aws4_request, SignedHeaders=Host;x-amz-date, Signature=${'a'.repeat(64)}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20250102/local/mq/aws4_request,SignedHeaders=host;x-amz-date`,
  ];
  for (const header of bad)
    t.throws(() => parseAuthorization(header), { code: 'IncompleteSignature' }, header);
});

t.test('signatures made by the aws4 package verify; any change breaks them', async (t) => {
  const cases = [
    { method: 'GET', path: '/v1/instances/MQ_INST_X/topics', body: undefined },
    { method: 'GET', path: '/v1/x/messages?to=2&from=1&key=a%20b', body: undefined },
    { method: 'PUT', path: '/v1/instances/i/topics/t', body: '{"messageType":"NORMAL"}' },
    { method: 'GET', path: '/v1/a%2Fb/caf%C3%A9', body: undefined },
  ];
  for (const c of cases) {
    const signed = aws4.sign(
      {
        host: '127.0.0.1:8080',
        method: c.method,
        path: c.path,
        service: 'mq',
        region: 'local',
        headers: c.body === undefined ? {} : { 'content-type': 'application/json' },
        ...(c.body === undefined ? {} : { body: c.body }),
      },
      { accessKeyId: AK, secretAccessKey: SK },
    );
    const headers = signed.headers as Record<string, string>;
    const auth = parseAuthorization(headers.Authorization);
    const amzDate = headers['X-Amz-Date'];
    const request = {
      method: c.method,
      rawUrl: c.path,
      rawHeaders: rawHeadersOf(headers),
      amzDate,
      payloadHash: c.body === undefined ? EMPTY_SHA256 : sha256Hex(c.body),
    };
    const key = signingKey(SK, auth.date, 'local', 'mq');
    t.ok(verifySignature(request, auth, key), `${c.method} ${c.path}`);
    t.notOk(verifySignature({ ...request, method: 'DELETE' }, auth, key), 'method bound');
    t.notOk(verifySignature({ ...request, rawUrl: `${c.path}x` }, auth, key), 'path bound');
    t.notOk(verifySignature({ ...request, payloadHash: sha256Hex('x') }, auth, key), 'body bound');
    t.notOk(
      verifySignature(request, auth, signingKey('other', auth.date, 'local', 'mq')),
      'key bound',
    );
  }
});

/** @smithy/signature-v4 as the AWS SDK v3 signs (service mq, region local). */
function smithySigner(): SignatureV4 {
  return new SignatureV4({
    service: 'mq',
    region: 'local',
    credentials: { accessKeyId: AK, secretAccessKey: SK },
    sha256: Sha256,
  });
}

t.test('signatures made by @smithy/signature-v4 verify', async (t) => {
  const signer = smithySigner();
  const body = '{"name":"x"}';
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 8080,
    path: '/v1/instances',
    query: { b: '2', a: 'x y' },
    headers: { host: '127.0.0.1:8080', 'content-type': 'application/json' },
    body,
  });
  const auth = parseAuthorization(signed.headers.authorization);
  t.ok(
    verifySignature(
      {
        method: 'POST',
        rawUrl: '/v1/instances?b=2&a=x%20y',
        rawHeaders: rawHeadersOf(signed.headers),
        amzDate: signed.headers['x-amz-date'],
        payloadHash: sha256Hex(body),
      },
      auth,
      signingKey(SK, auth.date, 'local', 'mq'),
    ),
  );
});

t.test('a header value with a non-breaking space verifies as either signer trims it', async (t) => {
  const smithy = smithySigner();
  // byte 0xA0, read by node as latin1: whitespace to JavaScript's trim and \s (aws4), not to
  // @smithy/signature-v4, which trims and collapses spaces and tabs only
  for (const value of ['a\u00a0\u00a0b', 'a\u00a0b', 'a\u00a0', '\u00a0 a']) {
    const shown = JSON.stringify(value);
    const byAws4 = aws4.sign(
      {
        host: '127.0.0.1:8080',
        method: 'GET',
        path: '/v1/instances',
        service: 'mq',
        region: 'local',
        headers: { 'x-trace': value },
      },
      { accessKeyId: AK, secretAccessKey: SK },
    );
    const bySmithy = await smithy.sign({
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 8080,
      path: '/v1/instances',
      headers: { host: '127.0.0.1:8080', 'x-trace': value },
    });
    for (const [signer, headers] of [
      ['aws4', byAws4.headers as Record<string, string>],
      ['smithy', bySmithy.headers],
    ] as const) {
      const auth = parseAuthorization(headers.Authorization ?? headers.authorization);
      const request = {
        method: 'GET',
        rawUrl: '/v1/instances',
        rawHeaders: rawHeadersOf(headers),
        amzDate: headers['X-Amz-Date'] ?? headers['x-amz-date'],
        payloadHash: EMPTY_SHA256,
      };
      const key = signingKey(SK, auth.date, 'local', 'mq');
      t.ok(verifySignature(request, auth, key), `${signer} ${shown}`);
      const changed = rawHeadersOf({ ...headers, 'x-trace': `${value}x` });
      t.notOk(
        verifySignature({ ...request, rawHeaders: changed }, auth, key),
        `${signer} ${shown}: the value still bound`,
      );
    }
  }
});
