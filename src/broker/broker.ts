// The broker: owns the messages of its queues in one MessageStore and serves BrokerClient's
// operations. Start-up: open the store (its recovery), replay the consumer ledger from the
// journal's latest snapshot, then clamp every cursor to what the store actually holds (a log tail
// lost under the async policy must not make a group skip what is written there next).
// Background: a sweep moves messages out of attempts to dead-letter queues, and snapshots bound
// the journal. close(): stop long polls, finish background work, snapshot, close the store.
import type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  DeadLetter,
  GroupDescriptor,
  GroupStats,
  MessagePage,
  MessageView,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  ResetTarget,
  TimeQuery,
  TopicDescriptor,
  TopicStats,
  TraceEvent,
  VisibilityResult,
} from '../cluster/broker-client.js';
import { WharfError } from '../errors.js';
import { MessageIdCodec, ReceiptHandleCodec } from '../protocol/index.js';
import { openMessageStore, type MessageStore, type MessageStoreOptions } from '../store/index.js';
import type {
  BrokerCore,
  BrokerLimits,
  BrokerLogger,
  SubscriptionCounters,
  TopicCounters,
} from './broker-core.js';
import { ConsumerLedger, type LedgerEntry } from './consumer-ledger.js';
import {
  decodeBrokerSnapshot,
  encodeBrokerSnapshot,
  type BrokerSnapshot,
} from './broker-snapshot.js';
import { decodeLedgerEntry, encodeLedgerEntry } from './ledger-entry-codec.js';
import { BodyKeys, type DataKeySource } from './body-keys.js';
import { DeadLetters } from './dead-letters.js';
import { LongPoll } from './long-poll.js';
import {
  deadLetterTopic,
  groupKey,
  resendTopic,
  resendTopicOf,
  RESEND_QUEUE_ID,
  storeTopic,
} from './names.js';
import { Publisher } from './publisher.js';
import { Queries } from './queries.js';
import { RateCounter } from './rate-counter.js';
import { Receiver } from './receiver.js';
import { TraceLog, traceTopic } from './trace-log.js';

export type { BrokerLogger } from './broker-core.js';

export interface BrokerOptions {
  /** The broker's data directory (commit log, consume queues, journal). */
  dataDir: string;
  /** Numeric id of this broker in the cluster (0 for the all-in-one node). */
  brokerId: number;
  /** Secret for message-id and receipt-handle MACs (32 bytes, derived from the master key). */
  macKey: Buffer;
  logger?: BrokerLogger;
  /** Passed to the store (segment size, flush policy, retention, disk watermark, …). */
  store?: Omit<MessageStoreOptions, 'dir' | 'logger'>;
  limits?: Partial<BrokerLimits>;
  /** Waiting receives per broker / per tenant. */
  maxParkedReceives?: number;
  maxParkedReceivesPerTenant?: number;
  /** Dead-letter sweep interval; default 1000 ms. */
  sweepIntervalMs?: number;
  /** Snapshot the consumer ledger when the journal grew by this much; default 32 MiB. */
  snapshotAfterBytes?: number;
  /** …or at this interval when anything changed; default 60 s. */
  snapshotIntervalMs?: number;
  /** Record message trace events (delivered, acked, retried, dead-lettered, re-sent); default on. */
  trace?: boolean;
  /** Per-instance data keys (Redis, sealed under WHARF_MASTER_KEY): with it, bodies are sealed
   *  and deleting an instance shreds them; without it (tests, tools) bodies are stored plain. */
  dataKeys?: DataKeySource;
}

const silentLogger: BrokerLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export class Broker implements BrokerClient, BrokerCore {
  readonly ledger = new ConsumerLedger();
  readonly longPoll: LongPoll;
  readonly ids: MessageIdCodec;
  readonly receipts: ReceiptHandleCodec;
  readonly logger: BrokerLogger;
  readonly limits: BrokerLimits;
  readonly brokerId: number;
  readonly traceLog: TraceLog | null;
  readonly bodyKeys: BodyKeys;
  private readonly publisher: Publisher;
  private readonly receiver: Receiver;
  private readonly deadLetterQueues: DeadLetters;
  private readonly queries: Queries;
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly topics = new Map<string, TopicCounters>();
  private readonly subscriptions = new Map<string, SubscriptionCounters>();
  private timers: NodeJS.Timeout[] = [];
  private snapshotting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly store: MessageStore,
    private readonly options: BrokerOptions,
  ) {
    this.brokerId = options.brokerId;
    this.logger = options.logger ?? silentLogger;
    this.ids = new MessageIdCodec(options.macKey);
    this.bodyKeys = new BodyKeys(options.dataKeys ?? null);
    this.receipts = new ReceiptHandleCodec(options.macKey);
    this.limits = { maxInflightPerQueue: 20_000, dedupCacheEntries: 100_000, ...options.limits };
    this.longPoll = new LongPoll({
      maxParked: options.maxParkedReceives ?? 10_000,
      maxParkedPerTenant: options.maxParkedReceivesPerTenant ?? 2_000,
    });
    this.traceLog =
      options.trace === false
        ? null
        : new TraceLog(store, {
            onError: (error) => this.logger.warn({ err: error }, 'trace events lost'),
          });
    this.publisher = new Publisher(this);
    this.receiver = new Receiver(this);
    this.deadLetterQueues = new DeadLetters(this);
    this.queries = new Queries(this);
  }

  static async open(options: BrokerOptions): Promise<Broker> {
    const store = await openMessageStore({
      ...options.store,
      dir: options.dataDir,
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    const broker = new Broker(store, options);
    try {
      await broker.recoverLedger();
    } catch (error) {
      await store.close();
      throw error;
    }
    store.onDispatch((topic) => broker.longPoll.notify(topic));
    broker.startTimers();
    return broker;
  }

  // ---- BrokerCore ----

  async record(entries: readonly LedgerEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.ledger.apply(entry);
    await this.store.journal.append(entries.map(encodeLedgerEntry));
    if (
      this.store.journal.bytesSinceSnapshot() >
      (this.options.snapshotAfterBytes ?? 32 * 1024 * 1024)
    )
      this.snapshotSoon();
  }

  track(task: Promise<unknown>, what: string): void {
    const tracked = task.then(
      () => undefined,
      (error: unknown) => this.logger.error({ err: error }, `${what} failed`),
    );
    this.tasks.add(tracked);
    void tracked.finally(() => this.tasks.delete(tracked));
  }

  topicCounters(name: string): TopicCounters {
    let counters = this.topics.get(name);
    if (counters === undefined) {
      counters = { publish: new RateCounter(), bytesIn: 0 };
      this.topics.set(name, counters);
    }
    return counters;
  }

  subscriptionCounters(key: string): SubscriptionCounters {
    let counters = this.subscriptions.get(key);
    if (counters === undefined) {
      counters = { delivered: new RateCounter(), acked: new RateCounter() };
      this.subscriptions.set(key, counters);
    }
    return counters;
  }

  rememberGroup(topic: TopicDescriptor, group: GroupDescriptor): void {
    const entry = this.ledger.configEntry(topic, group);
    if (entry !== null) this.track(this.record([entry]), 'journaling group settings');
  }

  /**
   * The instances whose messages this broker holds (tenant and instance ids from the store's
   * topic names, queues with entries only). An instance's trace topic alone does not count: it
   * holds no message of the tenant's.
   */
  instancesWithMessages(): { tenantId: string; instanceId: string }[] {
    const found = new Map<string, { tenantId: string; instanceId: string }>();
    for (const name of this.store.topics()) {
      if (this.store.queueIds(name).length === 0) continue;
      const [tenantId = '', instanceId = ''] = name.split('/');
      if (name === traceTopic(tenantId, instanceId)) continue;
      found.set(`${tenantId}/${instanceId}`, { tenantId, instanceId });
    }
    return [...found.values()];
  }

  // ---- BrokerClient ----

  publish(topic: TopicDescriptor, messages: PublishMessage[]): Promise<PublishResult[]> {
    return this.guard(() => this.publisher.publish(topic, messages));
  }

  receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    return this.guard(() => this.receiver.receive(topic, group, request, signal));
  }

  ack(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<AckResult[]> {
    return this.guard(() => this.receiver.ack(topic, group, receiptHandles));
  }

  changeVisibility(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandle: string,
    invisibleMs: number,
  ): Promise<VisibilityResult> {
    return this.guard(() =>
      this.receiver.changeVisibility(topic, group, receiptHandle, invisibleMs),
    );
  }

  getMessage(topic: TopicDescriptor, messageId: string): Promise<MessageView> {
    return this.guard(() => this.queries.getMessage(topic, messageId));
  }

  queryByKey(topic: TopicDescriptor, key: string, limit: number): Promise<MessageView[]> {
    return this.guard(() => this.queries.queryByKey(topic, key, limit));
  }

  queryByTime(topic: TopicDescriptor, query: TimeQuery): Promise<MessagePage> {
    return this.guard(() => this.queries.queryByTime(topic, query));
  }

  trace(topic: TopicDescriptor, messageId: string): Promise<TraceEvent[]> {
    return this.guard(() => this.queries.trace(topic, messageId));
  }

  resetGroup(topic: TopicDescriptor, group: GroupDescriptor, to: ResetTarget): Promise<void> {
    return this.guard(async () => {
      const name = storeTopic(topic);
      const subs = this.ledger.subscriptionsOfGroup(groupKey(group), name);
      if (subs.length === 0) subs.push(this.ledger.subscription(groupKey(group), name, 0));
      const entries: LedgerEntry[] = [];
      for (let queueId = 0; queueId < topic.queueCount; queueId++) {
        const { minQueueOffset, maxQueueOffset } = this.store.queueOffsets(name, queueId);
        const offset =
          to === 'earliest'
            ? minQueueOffset
            : to === 'latest'
              ? maxQueueOffset
              : await this.store.queueOffsetByTime(name, queueId, to);
        for (const sub of subs) entries.push({ op: 'reset', sub: sub.key, queue: queueId, offset });
      }
      await this.record(entries);
      this.longPoll.notify(name);
    });
  }

  deadLetters(
    group: GroupDescriptor,
    limit: number,
    cursor?: string,
  ): Promise<{ messages: DeadLetter[]; nextCursor?: string }> {
    return this.guard(() => this.deadLetterQueues.list(group, limit, cursor));
  }

  resendDeadLetters(
    group: GroupDescriptor,
    messageIds: string[],
  ): Promise<{ messageId: string; ok: boolean; code?: string }[]> {
    return this.guard(() => this.deadLetterQueues.resend(group, messageIds));
  }

  topicStats(topic: TopicDescriptor): Promise<TopicStats> {
    return this.guard(() => {
      const name = storeTopic(topic);
      const queues = Array.from({ length: topic.queueCount }, (_, queueId) => {
        const offsets = this.store.queueOffsets(name, queueId);
        return { queueId, minOffset: offsets.minQueueOffset, maxOffset: offsets.maxQueueOffset };
      });
      const counters = this.topicCounters(name);
      return Promise.resolve({
        messagesIn: queues.reduce((sum, queue) => sum + queue.maxOffset, 0),
        bytesIn: counters.bytesIn,
        publishRatePerSecond: counters.publish.perSecond(),
        queues,
      });
    });
  }

  groupStats(topic: TopicDescriptor, group: GroupDescriptor): Promise<GroupStats> {
    return this.guard(async () => {
      const name = storeTopic(topic);
      const now = Date.now();
      const subs = this.ledger.subscriptionsOfGroup(groupKey(group), name);
      let backlog = 0;
      let inflight = 0;
      let oldest = Infinity;
      let retries = 0;
      let delivered = 0;
      let acked = 0;
      const queueIds = [...Array.from({ length: topic.queueCount }, (_, i) => i), RESEND_QUEUE_ID];
      for (const sub of subs.length > 0 ? subs : [undefined]) {
        for (const queueId of queueIds) {
          const [queueTopic, storeQueue] =
            queueId === RESEND_QUEUE_ID ? [resendTopic(group, topic.topic), 0] : [name, queueId];
          const { minQueueOffset, maxQueueOffset } = this.store.queueOffsets(
            queueTopic,
            storeQueue,
          );
          const cursor = sub?.cursors.get(queueId);
          const ackOffset = Math.max(
            minQueueOffset,
            cursor?.ackOffset ??
              (await this.store.queueOffsetByTime(queueTopic, storeQueue, group.createdAt)),
          );
          if (ackOffset >= maxQueueOffset) continue;
          backlog += maxQueueOffset - ackOffset - (cursor?.doneAboveAck ?? 0);
          const head = await this.store.readQueue(queueTopic, storeQueue, ackOffset, {
            maxMessages: 1,
          });
          const first = head.messages[0];
          if (first !== undefined) oldest = Math.min(oldest, first.storeTimestampMs);
        }
        if (sub !== undefined) {
          inflight += sub.inflightCount();
          retries += sub.retries;
          const counters = this.subscriptionCounters(sub.key);
          delivered += counters.delivered.perSecond(now);
          acked += counters.acked.perSecond(now);
        }
      }
      return {
        backlog,
        inflight,
        oldestUnackedAgeMs: oldest === Infinity ? 0 : Math.max(0, now - oldest),
        deliveredRatePerSecond: delivered,
        ackedRatePerSecond: acked,
        retries,
        deadLetters: this.deadLetterQueues.count(group),
      };
    });
  }

  dropTopic(topic: TopicDescriptor): Promise<void> {
    return this.guard(async () => {
      const name = storeTopic(topic);
      const groups = [...this.ledger.configurations()]
        .filter((conf) => storeTopic(conf.topic) === name)
        .map((conf) => conf.group);
      await this.record([{ op: 'dropTopic', topic: name }]);
      await this.store.deleteTopic(name);
      for (const group of groups) await this.store.deleteTopic(resendTopic(group, topic.topic));
      this.topics.delete(name);
      this.publisher.forgetTopic(name);
      this.forgetDroppedCounters();
      this.longPoll.notify(name);
    });
  }

  dropGroup(group: GroupDescriptor): Promise<void> {
    return this.guard(async () => {
      const key = groupKey(group);
      const topics = [...this.ledger.configurations()]
        .filter((conf) => groupKey(conf.group) === key)
        .map((conf) => conf.topic.topic);
      await this.record([{ op: 'dropGroup', group: key }]);
      this.forgetDroppedCounters();
      await this.store.deleteTopic(deadLetterTopic(group));
      for (const topic of topics) await this.store.deleteTopic(resendTopic(group, topic));
    });
  }

  dropInstance(tenantId: string, instanceId: string): Promise<void> {
    return this.guard(async () => {
      // The key first: from here no envelope of the instance opens, whatever is still on disk.
      this.bodyKeys.forget(tenantId, instanceId);
      const prefix = `${tenantId}/${instanceId}/`;
      await this.traceLog?.flush();
      const names = new Set([traceTopic(tenantId, instanceId), ...this.store.topics()]);
      for (const name of names) {
        if (!name.startsWith(prefix)) continue;
        await this.store.deleteTopic(name);
        this.topics.delete(name);
        this.publisher.forgetTopic(name);
      }
      this.forgetDroppedCounters();
      this.logger.info({ tenantId, instanceId }, 'instance dropped: its data key is forgotten');
    });
  }

  health(): Promise<BrokerHealth> {
    if (this.closing !== undefined)
      return Promise.resolve({ ready: false, detail: 'shutting down' });
    // Not ready while the store cannot take writes (failed, or a disk below the watermark):
    // reads go on, and readiness returns by itself once the store can write again.
    const store = this.store.health();
    if (!store.writable) return Promise.resolve({ ready: false, detail: store.detail });
    return Promise.resolve({ ready: true });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Store and broker figures for metrics. */
  stats(): Record<string, number> {
    let inflight = 0;
    let subscriptions = 0;
    for (const sub of this.ledger.allSubscriptions()) {
      inflight += sub.inflightCount();
      subscriptions++;
    }
    return {
      ...this.store.stats(),
      parkedReceives: this.longPoll.parkedCount,
      inflight,
      subscriptions,
    };
  }

  // ---- internals ----

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined)
      throw new WharfError('Unavailable', 'the broker is shutting down', { retryAfterMs: 1000 });
    try {
      return await operation();
    } catch (error) {
      if (error instanceof WharfError) throw error;
      throw new WharfError('Internal', 'broker operation failed', { cause: error });
    }
  }

  private async recoverLedger(): Promise<void> {
    const startedAt = Date.now();
    const recovery = this.store.journal.recover();
    if (recovery.snapshot !== null) {
      const snapshot = decodeBrokerSnapshot(recovery.snapshot);
      this.ledger.restore(snapshot.ledger);
      for (const [name, bytes] of snapshot.bytesIn) this.topicCounters(name).bytesIn = bytes;
    }
    let entries = 0;
    for await (const data of recovery.entries) {
      entries++;
      this.ledger.apply(decodeLedgerEntry(data, `journal entry ${entries} after the snapshot`));
    }
    // what the store holds bounds every cursor (retention below, a lost async tail above)
    for (const sub of this.ledger.allSubscriptions()) {
      for (const [queueId, cursor] of sub.cursors) {
        const [topic, storeQueue] =
          queueId === RESEND_QUEUE_ID
            ? [resendTopicOf(sub.groupKey, sub.topic), 0]
            : [sub.topic, queueId];
        const { minQueueOffset, maxQueueOffset } = this.store.queueOffsets(topic, storeQueue);
        cursor.clampTo(maxQueueOffset);
        cursor.skipExpired(minQueueOffset);
      }
    }
    this.logger.info(
      {
        snapshot: recovery.snapshot !== null,
        journalEntries: entries,
        durationMs: Date.now() - startedAt,
      },
      'consumer state recovered',
    );
  }

  private forgetDroppedCounters(): void {
    for (const key of [...this.subscriptions.keys()]) {
      if (!this.ledger.hasSubscription(key)) this.subscriptions.delete(key);
    }
  }

  private startTimers(): void {
    const sweep = setInterval(() => this.sweep(), this.options.sweepIntervalMs ?? 1000);
    const snapshot = setInterval(() => {
      if (this.store.journal.bytesSinceSnapshot() > 0) this.snapshotSoon();
    }, this.options.snapshotIntervalMs ?? 60_000);
    sweep.unref();
    snapshot.unref();
    this.timers = [sweep, snapshot];
  }

  private sweep(): void {
    const now = Date.now();
    for (const { topic, group } of [...this.ledger.configurations()]) {
      for (const sub of this.ledger.subscriptionsOfGroup(groupKey(group), storeTopic(topic))) {
        // a subscription nobody received from for two sweeps is the sweep's to dead-letter
        this.receiver.sweep(topic, group, sub, now, 2 * (this.options.sweepIntervalMs ?? 1000));
      }
    }
  }

  private snapshotSoon(): void {
    if (this.snapshotting !== undefined) return;
    // serialized synchronously, in the same tick as writeSnapshot captures the journal position
    const snapshot: BrokerSnapshot = {
      ledger: this.ledger.snapshot(),
      bytesIn: [...this.topics].map(([name, counters]) => [name, counters.bytesIn]),
    };
    this.snapshotting = this.store.journal
      .writeSnapshot(encodeBrokerSnapshot(snapshot))
      .catch((error: unknown) =>
        this.logger.error({ err: error }, 'consumer state snapshot failed'),
      )
      .finally(() => (this.snapshotting = undefined));
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.longPoll.close();
    await Promise.all([...this.tasks]);
    await this.traceLog?.flush();
    await this.snapshotting;
    this.snapshotSoon();
    await this.snapshotting;
    await this.store.close();
  }
}
