// A tenant with one instance on a test node and the signed calls the delay tests make: publish,
// receive (draining every message a group can get now), ack, query, cancel, trace.
import type { Test } from 'tap';
import type { MessageStore } from '../../src/store/index.js';
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
  wharf: Pick<TestWharf, 'url' | 'adminToken'>;
  /** `<tenant>/<instance>/` of the store's topic names. */
  storePrefix: string;
  call: (method: string, path: string, body?: unknown) => Promise<Answer>;
  publish: (topic: string, messages: unknown[]) => Promise<Answer>;
  /** One receive call (no wait); acks what it got when `ack` is set. */
  receive: (topic: string, group: string, ack?: boolean) => Promise<Received[]>;
}

export async function delayClient(
  t: Test,
  overrides: WharfOverrides = {},
  wharfGiven?: TestWharf,
): Promise<DelayClient & { wharf: TestWharf }> {
  const wharf = wharfGiven ?? (await startWharf(t, overrides));
  const tenant = await provisionTenant(wharf);
  const client = clientFor(
    wharf,
    tenant.instanceId,
    tenant.accessKeyId,
    tenant.accessKeySecret,
    tenant.tenantId,
  );
  return { ...client, wharf };
}

export function clientFor(
  wharf: Pick<TestWharf, 'url' | 'adminToken'>,
  instanceId: string,
  ak: string,
  sk: string,
  tenantId = '',
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
    storePrefix: `${tenantId}/${instanceId}/`,
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

/** Publishes `count` delayed messages with properties i and due, due from `dueFromMs` spread
 *  evenly over `spreadMs`, `concurrency` signed requests of 32 at a time; returns the ids. */
export async function publishSpread(
  client: DelayClient,
  topic: string,
  count: number,
  dueFromMs: number,
  spreadMs: number,
  concurrency = 4,
): Promise<string[]> {
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const first = next;
      next = Math.min(count, next + 32);
      const messages = [];
      for (let i = first; i < next; i++) {
        const due = dueFromMs + Math.floor((i * spreadMs) / count);
        messages.push({
          body: `m${i}`,
          properties: { i: String(i), due: String(due) },
          deliverAt: due,
        });
      }
      const res = await client.publish(topic, messages);
      if (res.status !== 200) throw new Error(`publish ${res.status} ${JSON.stringify(res.body)}`);
      for (const [k, m] of (res.body.messages as { messageId: string }[]).entries())
        ids[first + k] = m.messageId;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

export interface Copy {
  i: number;
  due: number;
  storedAtMs: number;
  messageId: string;
}

/** The delayed copies in a topic's queues, read from the store directly (exactly once and
 *  lateness are about what was dispatched, not about how fast a test consumer drains). */
export async function readCopies(
  store: MessageStore,
  storeTopicName: string,
  queueCount: number,
): Promise<Copy[]> {
  const copies: Copy[] = [];
  for (let queueId = 0; queueId < queueCount; queueId++) {
    let from = 0;
    for (;;) {
      const page = await store.readQueue(storeTopicName, queueId, from, { maxMessages: 1000 });
      for (const m of page.messages) {
        if (m.properties.i === undefined) continue; // not one of publishSpread's
        const i = Number(m.properties.i);
        const due = Number(m.properties.due);
        copies.push({
          i,
          due,
          storedAtMs: m.storeTimestampMs,
          messageId: m.properties['\u0001mid'],
        });
      }
      if (page.messages.length === 0 || page.nextQueueOffset <= from) break;
      from = page.nextQueueOffset;
    }
  }
  return copies;
}

/** Checks every index 0..count-1 was dispatched exactly once, at most `maxLateMs` after its due
 *  time and never before; returns the worst lateness (for the log). */
export function checkCopies(t: Test, copies: Copy[], count: number, maxLateMs: number): number {
  const seen = new Map<number, number>();
  let worst = 0;
  let early = 0;
  let late = 0;
  for (const copy of copies) {
    seen.set(copy.i, (seen.get(copy.i) ?? 0) + 1);
    const lateness = copy.storedAtMs - copy.due;
    if (lateness < 0) early++;
    if (lateness > maxLateMs) late++;
    worst = Math.max(worst, lateness);
  }
  const missing = count - seen.size;
  const doubled = [...seen.values()].filter((n) => n > 1).length;
  t.equal(copies.length, count, 'one copy per message');
  t.equal(missing, 0, 'none missing');
  t.equal(doubled, 0, 'none twice');
  t.equal(early, 0, 'none before its time');
  t.equal(late, 0, `none later than ${maxLateMs} ms`);
  t.comment(`worst lateness ${worst} ms over ${copies.length} copies`);
  return worst;
}
