import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '../gateway/sha256.js';
import { adminFetch, provisionTenant, signedFetch, startWharf, json } from '../helpers/wharf.js';

const run = promisify(execFile);

async function errorCode(res: Response): Promise<string> {
  const body = (await json(res)) as { error: { code: string; requestId: string } };
  t.equal(body.error.requestId, res.headers.get('x-request-id'));
  return body.error.code;
}

function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
}

t.test('SigV4 through HTTP', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const { accessKeyId: ak, accessKeySecret: sk, instanceId } = tenant;
  const path = `/v1/instances/${instanceId}/topics`;

  t.test('aws4 signs a GET and a PUT with a body', async (t) => {
    const put = await signedFetch(wharf.url, {
      method: 'PUT',
      path: `${path}/orders`,
      body: { messageType: 'NORMAL' },
      ak,
      sk,
    });
    t.equal(put.status, 201);
    const get = await signedFetch(wharf.url, { path, ak, sk });
    t.equal(get.status, 200);
    t.match(await get.json(), { topics: [{ topic: 'orders' }] });
  });

  t.test('curl --aws-sigv4 works as documented', async (t) => {
    const { stdout } = await run('curl', [
      '-s',
      '-w',
      '\n%{http_code}',
      '--aws-sigv4',
      'aws:amz:local:mq',
      '--user',
      `${ak}:${sk}`,
      '-X',
      'PUT',
      '-H',
      'content-type: application/json',
      '-d',
      '{"messageType":"FIFO","queueCount":4}',
      `${wharf.url}${path}/curl-topic`,
    ]);
    const [body, status] = stdout.split('\n');
    t.equal(status, '201', body);
    const { stdout: list } = await run('curl', [
      '-s',
      '--aws-sigv4',
      'aws:amz:local:mq',
      '--user',
      `${ak}:${sk}`,
      `${wharf.url}${path}`,
    ]);
    t.match(JSON.parse(list), { topics: [{ topic: 'curl-topic' }, { topic: 'orders' }] });
  });

  t.test('@smithy/signature-v4 signs with x-amz-content-sha256', async (t) => {
    const url = new URL(wharf.url);
    const signer = new SignatureV4({
      service: 'mq',
      region: 'local',
      credentials: { accessKeyId: ak, secretAccessKey: sk },
      sha256: Sha256,
      applyChecksum: true,
    });
    const body = JSON.stringify({ deliveryMode: 'CLUSTERING' });
    const signed = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: `/v1/instances/${instanceId}/groups/smithy`,
      headers: {
        host: url.host,
        'content-type': 'application/json',
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      },
      body,
    });
    // UNSIGNED-PAYLOAD is refused: the server always hashes the body.
    const { host: _host, ...headers } = signed.headers;
    const unsigned = await fetch(`${wharf.url}${signed.path}`, { method: 'PUT', headers, body });
    t.equal(unsigned.status, 403);
    t.equal(await errorCode(unsigned), 'SignatureDoesNotMatch');
    const { createHash } = await import('node:crypto');
    const hashed = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: `/v1/instances/${instanceId}/groups/smithy`,
      headers: {
        host: url.host,
        'content-type': 'application/json',
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      },
      body,
    });
    const { host: _h, ...okHeaders } = hashed.headers;
    const ok = await fetch(`${wharf.url}${hashed.path}`, {
      method: 'PUT',
      headers: okHeaders,
      body,
    });
    t.equal(ok.status, 201);
  });

  t.test('each refusal has its code', async (t) => {
    const none = await fetch(`${wharf.url}${path}`);
    t.equal(none.status, 401);
    t.equal(await errorCode(none), 'MissingAuthentication');

    const basic = await fetch(`${wharf.url}${path}`, { headers: { authorization: 'Basic eDp5' } });
    t.equal(basic.status, 403);
    t.equal(await errorCode(basic), 'IncompleteSignature');

    const wrongKey = await signedFetch(wharf.url, { path, ak, sk: 'wrong' });
    t.equal(await errorCode(wrongKey), 'SignatureDoesNotMatch');

    const wrongRegion = await signedFetch(wharf.url, { path, ak, sk, region: 'eu-west-1' });
    t.equal(await errorCode(wrongRegion), 'SignatureDoesNotMatch');

    const wrongService = await signedFetch(wharf.url, { path, ak, sk, service: 'sqs' });
    t.equal(await errorCode(wrongService), 'SignatureDoesNotMatch');

    const unknown = await signedFetch(wharf.url, { path, ak: 'WKAAAAAAAAAAAAAAAAAA', sk });
    t.equal(unknown.status, 403);
    t.equal(await errorCode(unknown), 'InvalidAccessKeyId');

    const old = amzDate(Date.now() - 16 * 60 * 1000);
    const expired = await signedFetch(wharf.url, { path, ak, sk, headers: { 'x-amz-date': old } });
    t.equal(await errorCode(expired), 'RequestExpired');

    const noDate = await fetch(`${wharf.url}${path}`, {
      headers: {
        authorization: `AWS4-HMAC-SHA256 Credential=${ak}/20250101/local/mq/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
      },
    });
    t.equal(await errorCode(noDate), 'IncompleteSignature');

    const badHash = await signedFetch(wharf.url, {
      path,
      ak,
      sk,
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    t.equal(await errorCode(badHash), 'SignatureDoesNotMatch');
  });

  t.test('a tampered body fails the signature', async (t) => {
    const aws4 = (await import('aws4')).default;
    const url = new URL(wharf.url);
    const signed = aws4.sign(
      {
        host: url.host,
        method: 'PUT',
        path: `${path}/tamper`,
        service: 'mq',
        region: 'local',
        headers: { 'content-type': 'application/json' },
        body: '{"messageType":"NORMAL"}',
      },
      { accessKeyId: ak, secretAccessKey: sk },
    );
    const headers = signed.headers as Record<string, string>;
    delete headers.Host;
    delete headers['Content-Length'];
    const res = await fetch(`${wharf.url}${path}/tamper`, {
      method: 'PUT',
      headers,
      body: '{"messageType":"FIFO"}',
    });
    t.equal(await errorCode(res), 'SignatureDoesNotMatch');
  });
});

t.test('revocation, suspension and deletion stop credentials on every gateway', async (t) => {
  const first = await startWharf(t);
  const second = await startWharf(t, { redisUrl: first.redisUrl, masterKey: first.masterKey });
  const tenant = await provisionTenant(first);
  const { accessKeyId: ak, accessKeySecret: sk, instanceId } = tenant;
  const path = `/v1/instances/${instanceId}`;
  // both gateways have the credential cached
  t.equal((await signedFetch(first.url, { path, ak, sk })).status, 200);
  t.equal((await signedFetch(second.url, { path, ak, sk })).status, 200);

  const suspend = await adminFetch(first, 'PATCH', `/admin/v1/tenants/${tenant.tenantId}`, {
    status: 'suspended',
  });
  t.equal(suspend.status, 200);
  t.equal((await json(suspend)).status, 'suspended');
  const waitFor = async (url: string, code: string) => {
    for (let i = 0; i < 100; i++) {
      const res = await signedFetch(url, { path, ak, sk });
      const got =
        res.status === 200 ? 'ok' : ((await json(res)) as { error: { code: string } }).error.code;
      if (got === code) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };
  t.ok(await waitFor(first.url, 'AccessDenied'), 'suspended on the gateway that wrote');
  t.ok(await waitFor(second.url, 'AccessDenied'), 'suspended on the other gateway');
  await adminFetch(first, 'PATCH', `/admin/v1/tenants/${tenant.tenantId}`, { status: 'active' });
  t.ok(await waitFor(second.url, 'ok'), 'active again');

  const revoke = await adminFetch(
    second,
    'DELETE',
    `/admin/v1/tenants/${tenant.tenantId}/access-keys/${ak}`,
  );
  t.equal(revoke.status, 204);
  t.ok(await waitFor(first.url, 'InvalidAccessKeyId'), 'revoked on the other gateway');
  t.ok(await waitFor(second.url, 'InvalidAccessKeyId'), 'revoked on the gateway that wrote');
  const again = await adminFetch(
    second,
    'DELETE',
    `/admin/v1/tenants/${tenant.tenantId}/access-keys/${ak}`,
  );
  t.equal(again.status, 404);
});

t.test('bearer tokens', async (t) => {
  const wharf = await startWharf(t, { config: { adminJwtSecret: 'x'.repeat(40) } });
  const tenant = await provisionTenant(wharf);
  const { accessKeyId: ak, accessKeySecret: sk, instanceId } = tenant;

  const issued = await signedFetch(wharf.url, {
    method: 'POST',
    path: '/v1/tokens',
    body: {
      ttlSeconds: 300,
      permissions: [{ instance: instanceId, actions: ['query', 'publish'] }],
    },
    ak,
    sk,
  });
  t.equal(issued.status, 200);
  const { token, expiresAt, permissions } = (await json(issued)) as {
    token: string;
    expiresAt: number;
    permissions: unknown;
  };
  t.ok(expiresAt > Date.now() + 290_000 && expiresAt <= Date.now() + 300_000);
  t.same(permissions, [{ instance: instanceId, actions: ['publish', 'query'] }]);
  const bearer = { authorization: `Bearer ${token}` };

  const get = await fetch(`${wharf.url}/v1/instances/${instanceId}`, { headers: bearer });
  t.equal(get.status, 200, 'reads with any permission on the instance');
  // RFC 7235: the scheme name is case-insensitive (some clients send `bearer`)
  const lower = await fetch(`${wharf.url}/v1/instances/${instanceId}`, {
    headers: { authorization: `bearer  ${token}` },
  });
  t.equal(lower.status, 200, 'the scheme in lower case, two spaces');
  const operatorLower = await fetch(`${wharf.url}/admin/v1/tenants`, {
    headers: { authorization: `BEARER ${wharf.adminToken}` },
  });
  t.equal(operatorLower.status, 200, 'the operator plane too');
  const manage = await fetch(`${wharf.url}/v1/instances/${instanceId}/topics/x`, {
    method: 'PUT',
    headers: { ...bearer, 'content-type': 'application/json' },
    body: '{"messageType":"NORMAL"}',
  });
  t.equal(manage.status, 403, 'the token is narrower than the key');
  t.equal(await errorCode(manage), 'AccessDenied');

  const viaToken = await fetch(`${wharf.url}/v1/tokens`, {
    method: 'POST',
    headers: { ...bearer, 'content-type': 'application/json' },
    body: '{"ttlSeconds":60}',
  });
  t.equal(await errorCode(viaToken), 'AccessDenied', 'tokens do not mint tokens');

  const jwks = await fetch(`${wharf.url}/.well-known/jwks.json`);
  const { keys } = (await json(jwks)) as { keys: { kid: string; kty: string; d?: string }[] };
  t.equal(keys.length, 1);
  t.equal(keys[0].kty, 'EC');
  t.notOk('d' in keys[0], 'no private part');

  const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  t.equal(
    await errorCode(
      await fetch(`${wharf.url}/v1/instances`, { headers: { authorization: `Bearer ${forged}` } }),
    ),
    'InvalidToken',
  );
  t.equal(
    await errorCode(await fetch(`${wharf.url}/admin/v1/tenants`, { headers: bearer })),
    'InvalidToken',
    'a tenant token on the operator plane',
  );
  t.equal(
    await errorCode(
      await fetch(`${wharf.url}/v1/instances`, {
        headers: { authorization: `Bearer ${wharf.adminToken}` },
      }),
    ),
    'InvalidToken',
    'the operator token on the tenant plane',
  );

  const operatorJwt = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode('x'.repeat(40)));
  const asOperator = await fetch(`${wharf.url}/admin/v1/tenants`, {
    headers: { authorization: `Bearer ${operatorJwt}` },
  });
  t.equal(asOperator.status, 200, 'operator JWT with role admin');
  // one without an expiry would be an operator credential for ever: refused
  const forever = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode('x'.repeat(40)));
  t.equal(
    await errorCode(
      await fetch(`${wharf.url}/admin/v1/tenants`, {
        headers: { authorization: `Bearer ${forever}` },
      }),
    ),
    'InvalidToken',
    'an operator JWT without exp',
  );
  // nor one for a week: a leaked operator token must not last
  const week = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('7d')
    .sign(new TextEncoder().encode('x'.repeat(40)));
  t.equal(
    await errorCode(
      await fetch(`${wharf.url}/admin/v1/tenants`, {
        headers: { authorization: `Bearer ${week}` },
      }),
    ),
    'InvalidToken',
    'an operator JWT expiring in more than 24 h',
  );
  const notAdmin = await new SignJWT({ role: 'viewer' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode('x'.repeat(40)));
  t.equal(
    await errorCode(
      await fetch(`${wharf.url}/admin/v1/tenants`, {
        headers: { authorization: `Bearer ${notAdmin}` },
      }),
    ),
    'InvalidToken',
  );
  t.equal(
    await errorCode(
      await fetch(`${wharf.url}/admin/v1/tenants`, {
        headers: { authorization: 'AWS4-HMAC-SHA256 x' },
      }),
    ),
    'InvalidToken',
  );
  t.equal(await errorCode(await fetch(`${wharf.url}/admin/v1/tenants`)), 'MissingAuthentication');

  // revoking an unknown key answers AccessKeyNotFound; of an unknown tenant, TenantNotFound
  t.equal(
    await errorCode(
      await adminFetch(
        wharf,
        'DELETE',
        `/admin/v1/tenants/${tenant.tenantId}/access-keys/WKAAAAAAAAAAAAAAAAAA`,
      ),
    ),
    'AccessKeyNotFound',
  );
  t.equal(
    await errorCode(
      await adminFetch(
        wharf,
        'DELETE',
        `/admin/v1/tenants/ten-aaaaaaaaaaaaaaaaaaaa/access-keys/${ak}`,
      ),
    ),
    'TenantNotFound',
  );
  await adminFetch(wharf, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}/access-keys/${ak}`);
  const afterRevoke = await fetch(`${wharf.url}/v1/instances/${instanceId}`, { headers: bearer });
  t.equal(await errorCode(afterRevoke), 'InvalidToken', 'a token dies with its key');
});

t.test('operator JWTs verified through WHARF_ADMIN_JWKS_URL', async (t) => {
  const { createServer } = await import('node:http');
  const { exportJWK, generateKeyPair } = await import('jose');
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'op-1', alg: 'ES256' };
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address() as { port: number };
  const wharf = await startWharf(t, {
    config: { adminJwksUrl: `http://127.0.0.1:${address.port}/jwks.json` },
  });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'op-1' })
      .setExpirationTime('5m')
      .sign(privateKey);
  const ok = await fetch(`${wharf.url}/admin/v1/tenants`, {
    headers: { authorization: `Bearer ${await sign({ role: 'admin' })}` },
  });
  t.equal(ok.status, 200);
  const viewer = await fetch(`${wharf.url}/admin/v1/tenants`, {
    headers: { authorization: `Bearer ${await sign({ role: 'viewer' })}` },
  });
  t.equal(await errorCode(viewer), 'InvalidToken');
});

t.test('a verified token is remembered until it expires', async (t) => {
  const { TokenService } = await import('../../src/gateway/plugins/jwt.js');
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const tokens = new TokenService(wharf.meta);
  const principal = {
    tenantId: tenant.tenantId,
    tenant: (await wharf.meta.tenant(tenant.tenantId))!,
    accessKeyId: tenant.accessKeyId,
    permissions: [{ instance: '*', actions: ['query' as const] }],
    keyPermissions: [{ instance: '*', actions: ['query' as const] }],
    via: 'sigv4' as const,
  };
  const now = Date.now();
  const { token } = await tokens.issue(principal, 60, undefined, now);
  t.match(await tokens.verify(token, now), { via: 'token', accessKeyId: tenant.accessKeyId });
  t.match(await tokens.verify(token, now + 1000), { via: 'token' }, 'from the cache');
  await t.rejects(tokens.verify(token, now + 61_000), { code: 'InvalidToken' }, 'expired');
});
