// Signed calls of one tenant's instance for transaction tests (e2e and crash): publish, commit /
// rollback, check-back, receive, trace, topic and group creation.
import { waitFor } from './wait-for.js';
import { provisionTenant, signedFetch, type TestWharf } from './wharf.js';

export interface Received {
  messageId: string;
  receiptHandle: string;
  body: string;
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  shardingKey: string | null;
  publishTime: number;
}

export interface Checked {
  transactionId: string;
  messageId: string;
  body: string;
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  publishTime: number;
  checkCount: number;
}

export interface Published {
  messageId: string;
  transactionId: string;
  queueId: number;
}

export type TxnClient = Awaited<ReturnType<typeof clientOf>>;

/** Signed calls of one tenant's instance, for transaction tests. */
export async function clientOf(wharf: Pick<TestWharf, 'url' | 'adminToken'>, tenantArg?: Tenant) {
  const tenant = tenantArg ?? (await provisionTenant(wharf));
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const base = `/v1/instances/${tenant.instanceId}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await signedFetch(wharf.url, {
      method,
      path: `${base}${path}`,
      ...(body === undefined ? {} : { body }),
      ...who,
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown> | undefined,
    };
  };
  const publish = async (topic: string, messages: unknown[]): Promise<Published[]> => {
    const res = await call('POST', `/topics/${topic}/messages`, { messages });
    if (res.status !== 200) throw new Error(`publish ${res.status} ${JSON.stringify(res.body)}`);
    return res.body?.messages as Published[];
  };
  const decide = async (topic: string, transactionId: string, decision: 'commit' | 'rollback') =>
    call('POST', `/topics/${topic}/transactions/${transactionId}/${decision}`);
  const receive = async (topic: string, group: string, waitSeconds = 0): Promise<Received[]> => {
    const res = await call('POST', `/topics/${topic}/groups/${group}/receive`, {
      maxMessages: 32,
      waitSeconds,
    });
    if (res.status !== 200) throw new Error(`receive ${res.status} ${JSON.stringify(res.body)}`);
    return res.body?.messages as Received[];
  };
  const check = async (topic: string, waitSeconds = 0, maxMessages = 32): Promise<Checked[]> => {
    const res = await call('POST', `/topics/${topic}/transactions/check`, {
      maxMessages,
      waitSeconds,
    });
    if (res.status !== 200) throw new Error(`check ${res.status} ${JSON.stringify(res.body)}`);
    return res.body?.messages as Checked[];
  };
  const trace = async (topic: string, messageId: string) => {
    const res = await call('GET', `/topics/${topic}/messages/${messageId}/trace`);
    if (res.status !== 200) throw new Error(`trace ${res.status} ${JSON.stringify(res.body)}`);
    return res.body?.events as { type: string; reason?: string; checkCount?: number }[];
  };
  const topic = async (name: string, messageType = 'TRANSACTION') => {
    const res = await call('PUT', `/topics/${name}`, { messageType, queueCount: 2 });
    if (res.status !== 201) throw new Error(`topic ${res.status}`);
  };
  const group = async (name: string) => {
    const res = await call('PUT', `/groups/${name}`, {});
    if (res.status !== 201) throw new Error(`group ${res.status}`);
  };
  return { tenant, call, publish, decide, receive, check, trace, topic, group };
}

export type Tenant = Awaited<ReturnType<typeof provisionTenant>>;

/** Receives until `count` messages came (or fails naming what was missing). */
export async function drain(
  c: TxnClient,
  topic: string,
  group: string,
  count: number,
): Promise<Received[]> {
  const got: Received[] = [];
  await waitFor(`${count} messages on ${topic}`, async () => {
    got.push(...(await c.receive(topic, group)));
    return got.length >= count;
  });
  return got;
}
