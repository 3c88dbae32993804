// Test helpers for the broker room: a real Broker on a temp dir and descriptors with defaults.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { Broker, type BrokerOptions } from '../../src/broker/index.js';
import type { GroupDescriptor, PublishMessage, TopicDescriptor } from '../../src/model/index.js';
import { waitFor } from './wait-for.js';

export const MAC_KEY = Buffer.alloc(32, 5);

export interface BrokerHarness {
  dir: string;
  /** Opens a broker on the harness's directory; closed before the directory is removed. */
  open(overrides?: Partial<BrokerOptions>): Promise<Broker>;
}

/** A data directory for the brokers of one test: at teardown every broker opened on it is
 *  closed, then the directory is removed (tap runs teardowns first-in first-out). */
export function brokerHarness(t: Test): BrokerHarness {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-broker-'));
  const brokers: Broker[] = [];
  t.teardown(async () => {
    for (const broker of brokers) await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    open: async (overrides = {}) => {
      const broker = await Broker.open({
        dataDir: dir,
        brokerId: 0,
        macKey: MAC_KEY,
        sweepIntervalMs: 50,
        ...overrides,
        store: { segmentBytes: 1024 * 1024, minFreeDiskBytes: 0, ...overrides.store },
      });
      brokers.push(broker);
      return broker;
    },
  };
}

/** "SIGKILL" a broker: copy its data dir as it is now (no close, no final snapshot) and open a
 *  broker on the copy; the copy is closed and removed at teardown. */
export async function crashCopy(
  t: { teardown(fn: () => Promise<void>): void },
  dir: string,
  overrides: Partial<BrokerOptions> = {},
): Promise<Broker> {
  const copy = mkdtempSync(join(tmpdir(), 'wharf-crash-copy-'));
  cpSync(dir, copy, { recursive: true });
  const broker = await Broker.open({
    dataDir: copy,
    brokerId: 0,
    macKey: MAC_KEY,
    sweepIntervalMs: 50,
    ...overrides,
    store: { segmentBytes: 1024 * 1024, minFreeDiskBytes: 0, ...overrides.store },
  });
  t.teardown(async () => {
    await broker.close();
    rmSync(copy, { recursive: true, force: true });
  });
  return broker;
}

/**
 * A crash under the async flush policy that loses the commit log's unsynced tail while the
 * journal (synced on its own timer) survives. Made when the log stands as it will be found: the
 * data dir is copied now; `crash` opens a broker on that copy with the live broker's journal as
 * it is then. `dir` is the copy (closed and removed at teardown).
 */
export function lostTailCrash(
  t: { teardown(fn: () => Promise<void>): void },
  liveDir: string,
): { dir: string; crash(overrides: Partial<BrokerOptions>): Promise<Broker> } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-synced-'));
  const opened: Broker[] = [];
  t.teardown(async () => {
    for (const broker of opened) await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });
  cpSync(liveDir, dir, { recursive: true });
  return {
    dir,
    async crash(overrides) {
      rmSync(join(dir, 'journal'), { recursive: true });
      cpSync(join(liveDir, 'journal'), join(dir, 'journal'), { recursive: true });
      const broker = await Broker.open({
        dataDir: dir,
        brokerId: 0,
        macKey: MAC_KEY,
        ...overrides,
      });
      opened.push(broker);
      return broker;
    },
  };
}

export function openTestBroker(t: Test, overrides: Partial<BrokerOptions> = {}): Promise<Broker> {
  return brokerHarness(t).open(overrides);
}

let counter = 0;

export function topicOf(overrides: Partial<TopicDescriptor> = {}): TopicDescriptor {
  return {
    tenantId: 't1',
    instanceId: 'i1',
    topic: `topic-${++counter}`,
    messageType: 'NORMAL',
    queueCount: 4,
    retentionHours: 72,
    dedupWindowMs: 600_000,
    createdAt: Date.now(),
    ...overrides,
  };
}

export function groupOf(overrides: Partial<GroupDescriptor> = {}): GroupDescriptor {
  return {
    tenantId: 't1',
    instanceId: 'i1',
    group: `group-${++counter}`,
    deliveryMode: 'CLUSTERING',
    maxDeliveryAttempts: 17,
    invisibleSeconds: 30,
    createdAt: Date.now() - 1,
    ...overrides,
  };
}

export function text(body: string, extra: Partial<PublishMessage> = {}): PublishMessage {
  return { body: Buffer.from(body), bodyEncoding: 'utf8', ...extra };
}

/** A one-queue topic on `broker` whose group received and acked its first five messages
 *  (old-0 … old-4); `receive` takes up to 32 at once (from `on`, another broker, if given). */
export async function fiveAcked(broker: Broker) {
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  const receive = (to: TopicDescriptor, by: GroupDescriptor, on: Broker = broker) =>
    on.receive(to, by, { maxMessages: 32, waitMs: 0, tags: '*' });
  await broker.publish(
    topic,
    Array.from({ length: 5 }, (_, i) => text(`old-${i}`)),
  );
  const old = await receive(topic, group);
  await broker.ack(
    topic,
    group,
    old.map((m) => m.receiptHandle),
  );
  return { topic, group, receive };
}

type JournalAppend = (entries: Buffer[]) => Promise<void>;

/**
 * Stands in for a broker's journal appends, to refuse or hold some entries (a full append
 * queue, a slow disk): `intercept(fn)` sends every append to `fn` with the real append to call,
 * `restore()` puts the real one back.
 */
export function journalAppends(broker: Broker): {
  intercept(fn: (entries: Buffer[], real: JournalAppend) => Promise<void>): void;
  restore(): void;
} {
  const journal = broker.store.journal as unknown as { append: JournalAppend };
  const real = journal.append.bind(journal);
  return {
    intercept: (fn) => {
      journal.append = (entries) => fn(entries, real);
    },
    restore: () => {
      journal.append = real;
    },
  };
}

/** Resolves once everything appended to the broker's journal so far is written (and synced under
 *  the sync policy): a receive answers before its delivery entry is, so a copy of the data dir
 *  made right after one may or may not hold it. */
export function journalWritten(broker: Broker): Promise<void> {
  const journal = broker.store.journal as unknown as { groupCommit: { drain(): Promise<void> } };
  return journal.groupCommit.drain();
}

/** Whether journal entries hold one of the ops `op` matches (e.g. /deliver|complete/). */
export function holdsOp(entries: readonly Buffer[], op: RegExp): boolean {
  return entries.some((entry) => {
    const found = /"op":"([^"]+)"/.exec(entry.toString());
    return found !== null && new RegExp(`^(?:${op.source})$`).test(found[1]);
  });
}

/**
 * A FIFO topic of one queue whose group, after a crash, owes its first ten messages (their
 * delivery entry and acks were refused by the journal) below ten more in flight (their consumer
 * died): `crash(overrides)` opens a broker on a copy of the data dir as it stands (crashCopy).
 * `sent` are the twenty bodies in order.
 */
export async function fifoOwedBelowInflight(t: Test) {
  const harness = brokerHarness(t);
  const broker = await harness.open();
  const topic = topicOf({ queueCount: 1, messageType: 'FIFO' });
  const group = groupOf();
  const other = groupOf();
  const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
  const receive = (by: GroupDescriptor, maxMessages: number, invisibleMs?: number) =>
    broker.receive(topic, by, {
      maxMessages,
      waitMs: 0,
      tags: '*',
      ...(invisibleMs === undefined ? {} : { invisibleMs }),
    });
  await broker.publish(
    topic,
    sent.map((body) => text(body, { shardingKey: 'k' })),
  );
  // the journal refuses the first receive's delivery entry and its acks (a full append queue)
  const appends = journalAppends(broker);
  appends.intercept((entries, append) =>
    holdsOp(entries, /deliver|complete/)
      ? Promise.reject(new Error('test: the append queue is full'))
      : append(entries),
  );
  const first = await receive(group, 10);
  await broker
    .ack(
      topic,
      group,
      first.map((m) => m.receiptHandle),
    )
    .catch(() => undefined);
  appends.restore();
  // the next ten are journaled in flight (their consumer dies)
  const second = await receive(group, 10, 100);
  // an ack of another group is answered once durable, so the delivery entry before it is too
  const barrier = await receive(other, 1);
  await broker.ack(
    topic,
    other,
    barrier.map((m) => m.receiptHandle),
  );
  return {
    topic,
    group,
    sent,
    first: first.map((m) => m.body.toString()),
    second: second.map((m) => m.body.toString()),
    crash: (overrides: Partial<BrokerOptions>) => crashCopy(t, harness.dir, overrides),
  };
}

/** Receives (4 at a time) and acks until `count` messages came: their bodies in that order. */
export async function redeliverAll(
  broker: Broker,
  topic: TopicDescriptor,
  group: GroupDescriptor,
  count: number,
): Promise<string[]> {
  const back: string[] = [];
  await waitFor('every message delivered again', async () => {
    const got = await broker.receive(topic, group, { maxMessages: 4, waitMs: 0, tags: '*' });
    back.push(...got.map((m) => m.body.toString()));
    await broker.ack(
      topic,
      group,
      got.map((m) => m.receiptHandle),
    );
    return back.length >= count;
  });
  return back;
}
