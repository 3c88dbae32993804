// A tenant with one instance on a test node and the signed calls the delay tests make: publish,
// receive (draining every message a group can get now), ack, query, cancel, trace.
import type { Test } from 'tap';
import {
  provisionTenant,
  signedFetch,
  startWharf,
  type TestWharf,
  type WharfOverrides,
} from './wharf.js';

export interface Received {
  messageId: string;
  receiptHandle: string;
  body: string;
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  queueId: number;
  queueOffset: number;
  publishTime: number;
}

export interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON of the API under test
  body: any;
}

export interface DelayClient {
  wharf: TestWharf;
  call(method: string, path: string, body?: unknown): Promise<Answer>;
  publish(topic: string, messages: unknown[]): Promise<Answer>;
  /** One receive call (no wait); acks what it got when `ack` is set. */
  receive(topic: string, group: string, ack?: boolean): Promise<Received[]>;
}

export async function delayClient(
  t: Test,
  overrides: WharfOverrides = {},
  wharfGiven?: TestWharf,
): Promise<DelayClient> {
  const wharf = wharfGiven ?? (await startWharf(t, overrides));
  const tenant = await provisionTenant(wharf);
  return clientFor(wharf, tenant.instanceId, tenant.accessKeyId, tenant.accessKeySecret);
}

export function clientFor(
  wharf: TestWharf,
  instanceId: string,
  ak: string,
  sk: string,
): DelayClient {
  const base = `/v1/instances/${instanceId}`;
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const res = await signedFetch(wharf.url, {
      method,
      path: `${base}${path}`,
      ...(body === undefined ? {} : { body }),
      ak,
      sk,
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  };
  return {
    wharf,
    call,
    publish: (topic, messages) => call('POST', `/topics/${topic}/messages`, { messages }),
    async receive(topic, group, ack = true) {
      const res = await call('POST', `/topics/${topic}/groups/${group}/receive`, {
        maxMessages: 32,
      });
      if (res.status !== 200) throw new Error(`receive ${res.status} ${JSON.stringify(res.body)}`);
      const messages = res.body.messages as Received[];
      if (ack && messages.length > 0) {
        const acked = await call('POST', `/topics/${topic}/groups/${group}/ack`, {
          receiptHandles: messages.map((m) => m.receiptHandle),
        });
        if (acked.status !== 200) throw new Error(`ack ${acked.status}`);
      }
      return messages;
    },
  };
}
