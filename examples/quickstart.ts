// Quick start with a client generated from openapi/openapi.json (openapi-typescript types +
// openapi-fetch) and SigV4 signing (aws4) as a middleware. Against a running node:
//   npm start                          # in one terminal
//   npm run example                    # in another (reads data/admin.token)
// It provisions a tenant, an access key, an instance, a topic and a group, then publishes one
// message and receives and acks it.
import { readFileSync } from 'node:fs';
import aws4 from 'aws4';
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from '../openapi/wharf-api.js';

const baseUrl = process.env.WHARF_URL ?? 'http://127.0.0.1:8080';
const region = process.env.WHARF_REGION ?? 'local';
const adminToken =
  process.env.WHARF_ADMIN_TOKEN ??
  readFileSync(`${process.env.WHARF_DATA_DIR ?? 'data'}/admin.token`, 'utf8').trim();

/** Signs each request openapi-fetch builds with SigV4 (service `mq`). */
export function sigv4(accessKeyId: string, secretAccessKey: string): Middleware {
  return {
    async onRequest({ request }) {
      const url = new URL(request.url);
      const body = request.body === null ? undefined : await request.clone().text();
      const headers: Record<string, string> = {};
      request.headers.forEach((value, name) => (headers[name] = value));
      const signed = aws4.sign(
        {
          host: url.host,
          method: request.method,
          path: url.pathname + url.search,
          service: 'mq',
          region,
          headers,
          ...(body === undefined ? {} : { body }),
        },
        { accessKeyId, secretAccessKey },
      );
      const out = new Headers();
      for (const [name, value] of Object.entries(signed.headers as Record<string, string>)) {
        if (!['host', 'content-length'].includes(name.toLowerCase())) out.set(name, String(value));
      }
      return new Request(request.url, { method: request.method, headers: out, body: body ?? null });
    },
  };
}

function check<T>(what: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

async function main(): Promise<void> {
  const admin = createClient<paths>({
    baseUrl,
    headers: { authorization: `Bearer ${adminToken}` },
  });
  const tenant = check(
    'create tenant',
    await admin.POST('/admin/v1/tenants', { body: { name: `example-${Date.now()}` } }),
  );
  const key = check(
    'create access key',
    await admin.POST('/admin/v1/tenants/{tenantId}/access-keys', {
      params: { path: { tenantId: tenant.tenantId } },
      body: { description: 'quickstart' },
    }),
  );
  const client = createClient<paths>({ baseUrl });
  client.use(sigv4(key.accessKeyId, key.accessKeySecret));

  const { instanceId } = check(
    'create instance',
    await client.POST('/v1/instances', { body: { name: 'prod' } }),
  );
  const path = { instanceId, topic: 'orders' };
  check(
    'put topic',
    await client.PUT('/v1/instances/{instanceId}/topics/{topic}', {
      params: { path },
      body: { messageType: 'NORMAL' },
    }),
  );
  check(
    'put group',
    await client.PUT('/v1/instances/{instanceId}/groups/{group}', {
      params: { path: { instanceId, group: 'billing' } },
      body: {},
    }),
  );
  console.log(`tenant ${tenant.tenantId}, key ${key.accessKeyId}, instance ${instanceId}`);

  const published = await client.POST('/v1/instances/{instanceId}/topics/{topic}/messages', {
    params: { path },
    body: { messages: [{ body: 'hello', tag: 'TagA', keys: ['order-17'] }] },
  });
  if (published.error !== undefined) {
    console.log(`publish: ${published.error.error.code} (${published.error.error.message})`);
    return;
  }
  console.log('published', published.data.messages);
  const received = check(
    'receive',
    await client.POST('/v1/instances/{instanceId}/topics/{topic}/groups/{group}/receive', {
      params: { path: { ...path, group: 'billing' } },
      body: { waitSeconds: 5 },
    }),
  );
  for (const message of received.messages) console.log('received', message.messageId, message.body);
  if (received.messages.length > 0) {
    const acked = check(
      'ack',
      await client.POST('/v1/instances/{instanceId}/topics/{topic}/groups/{group}/ack', {
        params: { path: { ...path, group: 'billing' } },
        body: { receiptHandles: received.messages.map((m) => m.receiptHandle) },
      }),
    );
    console.log('acked', acked.results);
  }
}

await main();
