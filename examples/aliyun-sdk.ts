// The official Aliyun MQ HTTP SDK (@aliyunmq/mq-http-sdk), unmodified, against Wharf: only the
// endpoint and the keys change. Against a running node:
//   npm start                          # in one terminal
//   npm run example:aliyun             # in another (reads data/admin.token)
// It provisions a tenant, an access key, an instance, a topic and a group (operator and /v1
// calls: the SDK cannot create resources), then, with the SDK only, publishes a message with a
// tag, a key and a property, long-polls it with a tag filter and acks it.
import { readFileSync } from 'node:fs';
import aws4 from 'aws4';
import mqsdk, { type MQError } from '@aliyunmq/mq-http-sdk';

const { MQClient, MessageProperties } = mqsdk;
const baseUrl = process.env.WHARF_URL ?? 'http://127.0.0.1:8080';
const region = process.env.WHARF_REGION ?? 'local';
const adminToken =
  process.env.WHARF_ADMIN_TOKEN ??
  readFileSync(`${process.env.WHARF_DATA_DIR ?? 'data'}/admin.token`, 'utf8').trim();

async function call<T>(what: string, res: Promise<Response>): Promise<T> {
  const answer = await res;
  if (!answer.ok) throw new Error(`${what}: ${answer.status} ${await answer.text()}`);
  return (await answer.json()) as T;
}

function admin(method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** A /v1 call signed with SigV4 (service `mq`). */
function v1(key: { ak: string; sk: string }, method: string, path: string, body: unknown) {
  const url = new URL(path, baseUrl);
  const json = JSON.stringify(body);
  const signed = aws4.sign(
    {
      host: url.host,
      method,
      path,
      service: 'mq',
      region,
      headers: { 'content-type': 'application/json' },
      body: json,
    },
    { accessKeyId: key.ak, secretAccessKey: key.sk },
  );
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.Host;
  delete headers['Content-Length'];
  return fetch(url, { method, headers, body: json });
}

async function main(): Promise<void> {
  const { tenantId } = await call<{ tenantId: string }>(
    'create tenant',
    admin('POST', '/admin/v1/tenants', { name: `aliyun-example-${Date.now()}` }),
  );
  const { accessKeyId, accessKeySecret } = await call<{
    accessKeyId: string;
    accessKeySecret: string;
  }>('create access key', admin('POST', `/admin/v1/tenants/${tenantId}/access-keys`, {}));
  const key = { ak: accessKeyId, sk: accessKeySecret };
  const { instanceId } = await call<{ instanceId: string }>(
    'create instance',
    v1(key, 'POST', '/v1/instances', { name: 'prod' }),
  );
  await call(
    'put topic',
    v1(key, 'PUT', `/v1/instances/${instanceId}/topics/orders`, {
      messageType: 'NORMAL',
    }),
  );
  await call('put group', v1(key, 'PUT', `/v1/instances/${instanceId}/groups/billing`, {}));
  console.log(`tenant ${tenantId}, key ${accessKeyId}, instance ${instanceId}`);

  // From here on, the code an Aliyun user already has: endpoint and keys are Wharf's.
  const client = new MQClient(baseUrl, accessKeyId, accessKeySecret);
  const producer = client.getProducer(instanceId, 'orders');
  const consumer = client.getConsumer(instanceId, 'orders', 'billing', 'TagA');

  const props = new MessageProperties();
  props.messageKey('order-17');
  props.putProperty('region', 'eu');
  const published = await producer.publishMessage('hello from the Aliyun SDK', 'TagA', props);
  console.log('published', published.code, published.body);

  try {
    const consumed = await consumer.consumeMessage(16, 5);
    for (const m of consumed.body) {
      console.log('received', m.MessageId, m.MessageBody, m.MessageTag, m.MessageKey, m.Properties);
    }
    const acked = await consumer.ackMessage(consumed.body.map((m) => m.ReceiptHandle));
    console.log('acked', acked.code === 204 ? 'all' : acked.body);
  } catch (err) {
    // an empty long poll is the protocol's MessageNotExist error, not an empty list
    if ((err as MQError).Code !== 'MessageNotExist') throw err;
    console.log('nothing arrived within 5 s');
  }
}

await main();
