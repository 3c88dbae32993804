import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import aws4 from 'aws4';
import createClient, { type Middleware } from 'openapi-fetch';
import openapiTS, { astToString } from 'openapi-typescript';
import type { paths } from '../../openapi/wharf-api.js';
import { ERROR_CODES } from '../../src/errors.js';
import { HTTP_ERRORS, PUBLIC_ERROR_CODES } from '../../src/gateway/index.js';
import { generateOpenApiDocument, serializeDocument } from '../../src/gateway/openapi-generate.js';
import { adminFetch, startWharf } from '../helpers/wharf.js';

const root = join(import.meta.dirname, '../..');
const committed = readFileSync(join(root, 'openapi/openapi.json'), 'utf8');

t.test('the committed openapi/openapi.json is the generated one (npm run openapi)', async (t) => {
  t.equal(serializeDocument(await generateOpenApiDocument()), committed);
});

t.test('the committed client types are generated from the committed document', async (t) => {
  const types = readFileSync(join(root, 'openapi/wharf-api.d.ts'), 'utf8');
  const expected = astToString(await openapiTS(committed, { defaultNonNullable: false }));
  t.ok(types.endsWith(expected), 'run npm run openapi');
});

/** API.md's error table: code → status (docs/API.md is the repo's copy of shared/API.md). */
function apiErrorTable(path: string): Map<string, number> {
  const text = readFileSync(path, 'utf8');
  const table = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\|\s*(\d{3})\s*\|(.+?)\|/.exec(line);
    if (m === null) continue;
    for (const code of m[2].matchAll(/`(\w+)`/g)) table.set(code[1], Number(m[1]));
  }
  return table;
}

t.test('error codes: API.md, the code table, the HTTP mapping and OpenAPI agree', async (t) => {
  const copies = [join(root, 'docs/API.md'), join(root, '../shared/API.md')].filter(existsSync);
  const table = apiErrorTable(copies[0]);
  t.ok(table.size >= 24, 'the table was read');
  for (const copy of copies.slice(1)) t.same(apiErrorTable(copy), table, `${copy} agrees`);
  for (const [code, status] of table) {
    t.ok(code in ERROR_CODES, `${code} is in ERROR_CODES`);
    t.equal(HTTP_ERRORS[code as keyof typeof HTTP_ERRORS]?.status, status, `${code} → ${status}`);
    t.ok(PUBLIC_ERROR_CODES.includes(code as keyof typeof ERROR_CODES), `${code} is public`);
  }
  for (const [code, http] of Object.entries(HTTP_ERRORS)) {
    t.ok(PUBLIC_ERROR_CODES.includes(http.code), `${code} surfaces as a public code`);
    t.equal(HTTP_ERRORS[http.code].status, http.status, `${code} keeps its public code's status`);
  }
  const doc = JSON.parse(committed) as {
    components: {
      schemas: {
        ErrorBody: {
          properties: { error: { properties: { code: { anyOf: [{ enum: string[] }, unknown] } } } };
        };
      };
    };
  };
  t.same(
    [...doc.components.schemas.ErrorBody.properties.error.properties.code.anyOf[0].enum].sort(),
    [...PUBLIC_ERROR_CODES].sort(),
  );
});

t.test('a client generated from the committed document drives the provisioning flow', async (t) => {
  const wharf = await startWharf(t);
  const admin = createClient<paths>({
    baseUrl: wharf.url,
    headers: { authorization: `Bearer ${wharf.adminToken}` },
  });
  const tenant = await admin.POST('/admin/v1/tenants', { body: { name: 'typed' } });
  t.equal(tenant.response.status, 201);
  const tenantId = tenant.data!.tenantId;
  const key = await admin.POST('/admin/v1/tenants/{tenantId}/access-keys', {
    params: { path: { tenantId } },
    body: { description: 'typed client' },
  });
  const { accessKeyId, accessKeySecret } = key.data!;

  // SigV4 as a middleware: sign the request openapi-fetch built, body bytes included
  const sigv4: Middleware = {
    async onRequest({ request }) {
      const url = new URL(request.url);
      const body = request.body === null ? undefined : await request.clone().text();
      const headers: Record<string, string> = {};
      request.headers.forEach((v, k) => (headers[k] = v));
      const signed = aws4.sign(
        {
          host: url.host,
          method: request.method,
          path: url.pathname + url.search,
          service: 'mq',
          region: 'local',
          headers,
          ...(body === undefined ? {} : { body }),
        },
        { accessKeyId, secretAccessKey: accessKeySecret },
      );
      const out = new Headers();
      for (const [k, v] of Object.entries(signed.headers as Record<string, string>)) {
        if (!['host', 'content-length'].includes(k.toLowerCase())) out.set(k, String(v));
      }
      return new Request(request.url, { method: request.method, headers: out, body: body ?? null });
    },
  };
  const client = createClient<paths>({ baseUrl: wharf.url });
  client.use(sigv4);

  const instance = await client.POST('/v1/instances', { body: { name: 'prod' } });
  t.equal(instance.response.status, 201);
  const instanceId = instance.data!.instanceId;
  const topic = await client.PUT('/v1/instances/{instanceId}/topics/{topic}', {
    params: { path: { instanceId, topic: 'orders' } },
    body: { messageType: 'FIFO', queueCount: 4 },
  });
  t.equal(topic.response.status, 201);
  t.equal(topic.data?.messageType, 'FIFO');
  const group = await client.PUT('/v1/instances/{instanceId}/groups/{group}', {
    params: { path: { instanceId, group: 'billing' } },
    body: { retryPolicy: { backoffSeconds: [1, 10, 60] } },
  });
  t.equal(group.response.status, 201);
  const topics = await client.GET('/v1/instances/{instanceId}/topics', {
    params: { path: { instanceId } },
  });
  t.same(
    topics.data?.topics.map((x) => x.topic),
    ['orders'],
  );
  const mismatch = await client.PUT('/v1/instances/{instanceId}/topics/{topic}', {
    params: { path: { instanceId, topic: 'orders' } },
    body: { messageType: 'NORMAL' },
  });
  t.equal(mismatch.response.status, 409);
  t.equal(mismatch.error?.error.code, 'MessageTypeMismatch');
  const token = await client.POST('/v1/tokens', { body: { ttlSeconds: 60 } });
  t.ok(token.data?.token);
  const listed = await admin.GET('/admin/v1/tenants/{tenantId}/access-keys', {
    params: { path: { tenantId } },
  });
  t.equal(listed.data?.accessKeys.length, 1);
  t.equal((await adminFetch(wharf, 'GET', '/admin/v1/tenants')).status, 200);
});
