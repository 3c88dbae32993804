// The broker: owns the messages of its queues in one MessageStore and serves BrokerClient's
// operations, each through the part that owns it (Publisher, Receiver, DeadLetters, Queries,
// Stats) over one BrokerCore. Start-up: open the store (its recovery), recover the consumer ledger
// (LedgerJournal), apply what gateways left for it in Redis (cluster: pending drops, then publish
// fences). Background: a sweep moves messages out of attempts to dead-letter queues, and
// snapshots bound the journal. close(): stop long polls, finish background work, snapshot, close
// the store.
import type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  GroupStats,
  MessagePage,
  ResetTarget,
  TimeQuery,
  TopicStats,
  VisibilityResult,
} from '../cluster/index.js';
import type {
  CheckedMessage,
  DeadLetter,
  GroupDescriptor,
  MessageView,
  PendingDropSource,
  PublishFenceSource,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
  TraceEvent,
  TransactionCheckRequest,
  TransactionDecisionOptions,
} from '../model/index.js';
import { WharfError } from '../errors.js';
import { MessageIdCodec, ReceiptHandleCodec } from '../protocol/index.js';
import { openMessageStore, type MessageStore, type MessageStoreOptions } from '../store/index.js';
import { BodyKeys, type DataKeySource } from './body-keys.js';
import { BrokerCore, type BrokerLimits } from './broker-core.js';
import { silentLogger, type BrokerLogger } from './broker-logger.js';
import { ConsumerLedger, type LedgerEntry } from './consumer-ledger.js';
import { Counters } from './counters.js';
import { DeadLetters } from './dead-letters.js';
import { LedgerJournal } from './ledger-journal.js';
import { LongPoll } from './long-poll.js';
import { resetName } from './group-resets.js';
import { deadLetterTopic, groupKey, resendTopic, resendTopicParts, storeTopic } from './names.js';
import { Publisher } from './publisher.js';
import { Queries } from './queries.js';
import { Receiver } from './receiver.js';
import { PendingDrops } from './pending-drops.js';
import { PublishFences, vouchTopic } from './publish-fences.js';
import { StallGate } from './stall-gate.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { SealWorkers } from './seal-workers.js';
import type { ScheduleWheel } from './schedule-wheel.js';
import { Stats } from './stats.js';
import { TraceLog, traceTopic } from './trace-log.js';
import { Transactions, type TransactionOptions } from './transactions.js';

export type { BrokerLogger } from './broker-logger.js';

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
  /** Plaintext kept of the bodies sealed last (bytes), so receiving them opens nothing; default 0. */
  openedBodyCacheBytes?: number;
  /** Per-instance data keys (Redis, sealed under WHARF_MASTER_KEY): with it, bodies are sealed
   *  and deleting an instance shreds them; without it (tests, tools) bodies are stored plain. */
  dataKeys?: DataKeySource;
  /** Worker threads that seal published bodies (SealWorkers); 0, the default: on the event loop. */
  sealThreads?: number;
  /** Check-back delay, back-off and the limits after which an undecided half message is rolled
   *  back (defaults: 10 s, ×2 up to 5 min, 15 offers, 24 h). */
  transactions?: Partial<TransactionOptions>;
  /** The delay wheel (RedisScheduleWheel); without it delayed publishes are refused. */
  scheduleWheel?: ScheduleWheel;
  scheduler?: SchedulerOptions;
  /** This broker's publish fences (RedisPublishFences; cluster brokers): applied at start, before
   *  the broker serves, then as each is announced (the source's watch) and every
   *  `fenceIntervalMs` (default 1000). */
  publishFences?: PublishFenceSource;
  /** The topics, groups and instances deleted while this broker was down (RedisPendingDrops;
   *  cluster brokers): dropped here at start, before the broker serves, then as each is announced
   *  and every `fenceIntervalMs`, before the fences of each round. */
  pendingDrops?: PendingDropSource;
  fenceIntervalMs?: number;
}

/** How long start-up waits for the pending drops and publish fences (Redis) before it serves
 *  without them; they are applied by the interval once Redis answers. */
const START_FENCES_TIMEOUT_MS = 5_000;

export class Broker implements BrokerClient {
  readonly brokerId: number;
  readonly store: MessageStore;
  readonly ledger: ConsumerLedger;
  readonly longPoll: LongPoll;
  private readonly core: BrokerCore;
  private readonly publisher: Publisher;
  private readonly receiver: Receiver;
  private readonly deadLetterQueues: DeadLetters;
  private readonly queries: Queries;
  private readonly statistics: Stats;
  private readonly transactions: Transactions;
  /** Null without a fence source (the all-in-one node: its gateway never fails over). */
  readonly fences: PublishFences | null;
  /** Null without a drop source (the all-in-one node: its one broker is never down to a drop). */
  readonly drops: PendingDrops | null;
  /** The round of drops and fences running (applyFences). */
  private fenceRound: Promise<boolean> | null = null;
  /** Passes of the fence rounds started and done (settleFences waits for one). */
  private fencePassesStarted = 0;
  private fencePassesDone = 0;
  private passWaiters: { pass: number; resolve: () => void }[] = [];
  /** Null without fences; else holds a publish or receive after a stall until the fences left
   *  meanwhile are applied (stall-gate.ts). */
  private stallGate: StallGate | null = null;
  /** A fence or drop was announced during a round: look again when it ends. */
  private fencesAgain = false;
  /** Dead-letter re-sends cut short are still to finish (finishResends failed). */
  private resendsLeft = false;
  private finishingResends = false;
  /** Per instance (`tenant/instance/`), the drop entries a dropInstance applied whose journal
   *  append was refused: its retry journals them again. */
  private readonly unjournaledDrops = new Map<string, LedgerEntry[]>();
  /** Stop the fence and drop announcements (set once the watches are up). */
  private unwatchFences: (() => void)[] = [];
  /** Delayed messages, when the broker has a wheel. */
  readonly scheduler: Scheduler | null;
  private timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | undefined;
  /** Where bodies are sealed when `sealThreads` > 0. */
  private readonly sealWorkers: SealWorkers | null;

  private constructor(
    store: MessageStore,
    private readonly options: BrokerOptions,
  ) {
    const logger = options.logger ?? silentLogger;
    const sealThreads = options.sealThreads ?? 0;
    this.sealWorkers =
      options.dataKeys !== undefined && sealThreads > 0
        ? new SealWorkers({
            threads: sealThreads,
            onThreadError: (error) => logger.error({ err: error }, 'seal worker thread failed'),
          })
        : null;
    const ledger = new ConsumerLedger();
    const counters = new Counters();
    this.core = new BrokerCore({
      brokerId: options.brokerId,
      store,
      ledger,
      journal: new LedgerJournal(
        store,
        ledger,
        counters,
        logger,
        options.snapshotAfterBytes ?? 32 * 1024 * 1024,
      ),
      counters,
      longPoll: new LongPoll({
        maxParked: options.maxParkedReceives ?? 10_000,
        maxParkedPerTenant: options.maxParkedReceivesPerTenant ?? 2_000,
      }),
      ids: new MessageIdCodec(options.macKey),
      receipts: new ReceiptHandleCodec(options.macKey),
      logger,
      limits: {
        maxInflightPerQueue: 20_000,
        maxInflightPerTenant: 200_000,
        dedupCacheEntries: 100_000,
        ...options.limits,
      },
      bodyKeys: new BodyKeys(
        options.dataKeys ?? null,
        options.openedBodyCacheBytes ?? 0,
        this.sealWorkers ?? undefined,
      ),
      traceLog:
        options.trace === false
          ? null
          : new TraceLog(store, {
              onError: (error) => logger.warn({ err: error }, 'trace events lost'),
            }),
    });
    this.brokerId = options.brokerId;
    this.store = store;
    this.ledger = ledger;
    this.longPoll = this.core.longPoll;
    this.transactions = new Transactions(this.core, options.transactions);
    this.scheduler =
      options.scheduleWheel === undefined
        ? null
        : new Scheduler(this.core, options.scheduleWheel, options.scheduler);
    this.publisher = new Publisher(this.core, this.transactions, this.scheduler);
    this.deadLetterQueues = new DeadLetters(this.core);
    this.receiver = new Receiver(this.core, this.deadLetterQueues);
    this.queries = new Queries(this.core, this.scheduler);
    this.statistics = new Stats(this.core, this.deadLetterQueues);
    this.fences =
      options.publishFences === undefined
        ? null
        : new PublishFences(this.core, options.publishFences, this.scheduler, () =>
            this.publisher.forgetDedupHits(),
          );
    const fences = this.fences;
    if (fences !== null) {
      this.core.fencedCalls = {
        active: () => fences.remembersFences,
        fenced: (requestId) => fences.fenced(requestId),
        vouch: (topic, requestId) => fences.vouch(topic, requestId),
        settle: () => this.settleFences(),
      };
    }
    this.drops =
      options.pendingDrops === undefined
        ? null
        : new PendingDrops(options.pendingDrops, this, logger);
  }

  static async open(options: BrokerOptions): Promise<Broker> {
    // retention keeps pending delayed messages and needed half messages: everything until the
    // broker knows its floor
    let retentionFloor = (): Promise<number> => Promise.resolve(0);
    const store = await openMessageStore({
      ...options.store,
      dir: options.dataDir,
      retentionFloor: () => retentionFloor(),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    const broker = new Broker(store, options);
    const { scheduler, transactions } = broker;
    retentionFloor = async () =>
      Math.min(
        transactions.retentionFloor(),
        scheduler === null ? Number.POSITIVE_INFINITY : await scheduler.retentionFloor(),
      );
    // the seal threads boot while the journal replays: the first publishes do not wait for them
    const sealThreadsUp = broker.sealWorkers?.start();
    try {
      await broker.core.journal.recover();
      await broker.transactions.recover();
      await broker.finishResends();
      await broker.scheduler?.recover();
      await sealThreadsUp;
    } catch (error) {
      await broker.sealWorkers?.close();
      await store.close();
      throw error;
    }
    await broker.applyFencesAtStart();
    store.onDispatch((topic) => broker.longPoll.notify(topic));
    broker.startTimers();
    broker.scheduler?.start();
    return broker;
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
      if (name === traceTopic(tenantId, instanceId) || name === vouchTopic(tenantId, instanceId))
        continue;
      found.set(`${tenantId}/${instanceId}`, { tenantId, instanceId });
    }
    return [...found.values()];
  }

  // ---- BrokerClient ----

  publish(topic: TopicDescriptor, messages: PublishMessage[]): Promise<PublishResult[]> {
    return this.guard(async () => {
      const stalled = this.stallGate?.pass();
      if (stalled !== undefined) await stalled;
      if (this.fences?.remembersFences === true && this.fences.fencedAny(messages)) {
        // its gateway gave up on it and stored it on another broker: nobody reads this answer
        throw new WharfError('Unavailable', 'this publish call was failed over (fenced)', {
          retryAfterMs: 1000,
        });
      }
      const results = await this.publisher.publish(topic, messages);
      if (this.fences?.remembersFences === true) {
        const calls = new Set<string>();
        for (const message of messages)
          if (message.requestId !== undefined) calls.add(message.requestId);
        await this.fences.afterPublish(calls);
      }
      return results;
    });
  }

  receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    // after a stall, each look of the receive waits for the fences (Receiver.beforeLook)
    return this.guard(() => this.receiver.receive(topic, group, request, signal));
  }

  ack(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<AckResult[]> {
    return this.guard(() => this.receiver.ack(topic, group, receiptHandles));
  }

  returnMessages(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<void> {
    return this.guard(() => this.receiver.returnDeliveries(topic, group, receiptHandles));
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

  cancelMessage(topic: TopicDescriptor, messageId: string): Promise<void> {
    return this.guard(async () => {
      if (this.scheduler !== null && (await this.scheduler.cancel(topic, messageId))) return;
      // MessageNotFound when unknown (as a query by id answers: a transactional message is its
      // committed copy), else a message of the topic that was never delayed
      await this.queries.requireMessage(topic, messageId);
      throw new WharfError('Conflict', 'not a delayed message waiting for its time');
    });
  }

  trace(topic: TopicDescriptor, messageId: string): Promise<TraceEvent[]> {
    return this.guard(() => this.queries.trace(topic, messageId));
  }

  resetGroup(topic: TopicDescriptor, group: GroupDescriptor, to: ResetTarget): Promise<void> {
    return this.guard(async () => {
      this.core.dropped.check(topic, group); // a stale descriptor would make the cursor again
      // the ledger knows the group's delivery mode from here on (a broadcasting base is told
      // from a consumer by it), also when nothing was received yet
      this.core.rememberGroup(topic, group);
      const name = storeTopic(topic);
      // from here a BROADCASTING consumer seen for the first time waits for this reset, or is
      // listed below (group-resets.ts)
      const ended = this.core.resets.begin(resetName(groupKey(group), name));
      try {
        await this.resetSubscriptions(topic, group, name, to);
      } finally {
        ended();
      }
    });
  }

  private async resetSubscriptions(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    name: string,
    to: ResetTarget,
  ): Promise<void> {
    const subs = this.ledger.subscriptionsOfGroup(groupKey(group), name);
    // slot 0 is a clustering group's one subscription, and a broadcasting group's base: where
    // a consumer seen for the first time starts (it has no consumer of its own)
    if (!subs.some((sub) => sub.consumerSlot === 0)) {
      subs.push(this.ledger.subscription(groupKey(group), name, 0));
    }
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
    // applied once durable: a reset the journal refuses is answered with the error and not
    // made (applied first, it moved the cursors for this run only, and a crash took it back);
    // a subscription dropped while it waited stays dropped, even if its group was created
    // again under the name meanwhile (replay applies the reset to the old one, then the drop)
    const bySub = new Map(subs.map((sub) => [sub.key, sub]));
    await this.core.recordDurably(entries, (entry) => {
      const sub = entry.op === 'reset' ? bySub.get(entry.sub) : undefined;
      return sub === undefined || this.ledger.isLive(sub);
    });
    this.longPoll.notify(name);
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
    return this.guard(() => Promise.resolve(this.statistics.topicStats(topic)));
  }

  groupStats(topic: TopicDescriptor, group: GroupDescriptor): Promise<GroupStats> {
    return this.guard(() => this.statistics.groupStats(topic, group));
  }

  commitTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options: TransactionDecisionOptions = {},
  ): Promise<void> {
    return this.guard(() => this.transactions.commit(topic, transactionId, options));
  }

  rollbackTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options: TransactionDecisionOptions = {},
  ): Promise<void> {
    return this.guard(() => this.transactions.rollback(topic, transactionId, options));
  }

  checkTransactions(
    topic: TopicDescriptor,
    request: TransactionCheckRequest,
    signal?: AbortSignal,
  ): Promise<CheckedMessage[]> {
    return this.guard(() => this.transactions.check(topic, request, signal));
  }

  /** Undecided half messages on this broker (metrics, tests). */
  undecidedTransactions(): number {
    return this.transactions.undecidedCount;
  }

  dropTopic(topic: TopicDescriptor): Promise<void> {
    return this.guard(async () => {
      // from now on a call with this descriptor is refused (dropped-names.ts)
      this.core.dropped.addTopic(topic);
      const name = storeTopic(topic);
      const groups = [...this.ledger.configurationsOf(name)].map((conf) => conf.group);
      // its dead letters go with it (they stay in their groups' queues, marked done): before the
      // drop is journaled, so that a drop cut short here (a crash, a refused write) and sent
      // again (pending drops) still knows its groups — the journaled drop forgets them
      for (const group of groups) await this.deadLetterQueues.forgetTopic(group, topic.topic);
      await this.core.record([{ op: 'dropTopic', topic: name }]);
      // a topic created again under the name starts its queues at 0: nothing stays withdrawn
      if (this.core.journal.withdrawals.hasTopic(name))
        await this.core.journal.record([{ op: 'withdraw-drop', topic: name }]);
      // and those a move made meanwhile (moves stop at the journaled drop: isLive)
      for (const group of groups) await this.deadLetterQueues.forgetTopic(group, topic.topic);
      await this.store.deleteTopic(name);
      // its groups' re-send queues, by the ledger and by the store's names: a drop retried after
      // its journal entry was refused (applied in memory) finds no groups in the ledger
      const resends = new Set(groups.map((group) => resendTopic(group, topic.topic)));
      for (const stored of this.store.topics()) {
        const parts = resendTopicParts(stored);
        if (parts !== null && sameInstance(parts, topic) && parts.topic === topic.topic)
          resends.add(stored);
      }
      for (const resend of resends) await this.store.deleteTopic(resend);
      await this.transactions.dropTopic(topic);
      this.core.counters.forgetTopic(name);
      this.publisher.forgetTopic(name);
      this.forgetDroppedCounters();
      this.longPoll.notify(name);
      // its events still waiting are written now, before a topic created again under the name
      // can store a message: a message's trace keeps the records after its own (queries.ts)
      await this.core.traceLog?.flush();
    });
  }

  dropGroup(group: GroupDescriptor): Promise<void> {
    return this.guard(async () => {
      const key = groupKey(group);
      // from now on a call with this descriptor is refused, not a new cursor (dropped-names.ts)
      this.core.dropped.addGroup(group);
      const topics = [...this.ledger.configurations()]
        .filter((conf) => groupKey(conf.group) === key)
        .map((conf) => conf.topic);
      await this.core.record([{ op: 'dropGroup', group: key }]);
      this.forgetDroppedCounters();
      // receives parked on the group look again, find their subscription gone and answer
      // (empty) now rather than at the end of their wait
      for (const topic of topics) this.longPoll.notify(storeTopic(topic));
      await this.store.deleteTopic(deadLetterTopic(group));
      // its re-send queues, by the ledger and by the store's names (a retried drop: see dropTopic)
      const resends = new Set(topics.map((topic) => resendTopic(group, topic.topic)));
      for (const stored of this.store.topics()) {
        const parts = resendTopicParts(stored);
        if (parts !== null && sameInstance(parts, group) && parts.group === group.group)
          resends.add(stored);
      }
      for (const resend of resends) await this.store.deleteTopic(resend);
    });
  }

  dropInstance(tenantId: string, instanceId: string): Promise<void> {
    return this.guard(async () => {
      // The key first: from here no envelope of the instance opens, whatever is still on disk.
      this.core.bodyKeys.forget(tenantId, instanceId);
      const prefix = `${tenantId}/${instanceId}/`;
      await this.core.traceLog?.flush();
      await this.transactions.dropInstance(tenantId, instanceId);
      // Its consumer state goes before its queues, as in dropTopic and dropGroup (the caller
      // drops those first, but one may have failed): a cursor left on a deleted queue would
      // take the queue created again under the name for its own, and never deliver the new
      // messages at offsets it had acked. The entries apply at once; should their append be
      // refused, the retry (pending drops) journals them again: the ledger no longer holds the
      // names, and a crash would replay the old cursors.
      const { groups, topics } = this.ledger.namesUnder(prefix);
      for (const conf of this.ledger.configurations()) {
        if (!groupKey(conf.group).startsWith(prefix)) continue;
        this.core.dropped.addGroup(conf.group);
        this.core.dropped.addTopic(conf.topic);
      }
      const drops = [
        ...(this.unjournaledDrops.get(prefix) ?? []),
        ...topics.map((topic): LedgerEntry => ({ op: 'dropTopic', topic })),
        ...groups.map((group): LedgerEntry => ({ op: 'dropGroup', group })),
      ];
      this.unjournaledDrops.set(prefix, drops);
      await this.core.record(drops);
      this.unjournaledDrops.delete(prefix);
      // receives parked on its topics (every one has a subscription, so its topic is among
      // these) look again and find their subscriptions gone
      for (const drop of drops) if (drop.op === 'dropTopic') this.longPoll.notify(drop.topic);
      const names = new Set([traceTopic(tenantId, instanceId), ...this.store.topics()]);
      for (const name of names) {
        if (!name.startsWith(prefix)) continue;
        if (this.core.journal.withdrawals.hasTopic(name))
          await this.core.journal.record([{ op: 'withdraw-drop', topic: name }]);
        await this.store.deleteTopic(name);
        this.core.counters.forgetTopic(name);
        this.publisher.forgetTopic(name);
      }
      this.forgetDroppedCounters();
      this.core.logger.info(
        { tenantId, instanceId },
        'instance dropped: its data key is forgotten',
      );
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
    return { ...this.statistics.metrics(), ...this.scheduler?.stats() };
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

  private forgetDroppedCounters(): void {
    this.core.counters.forgetSubscriptionsExcept((key) => this.ledger.hasSubscription(key));
  }

  private startTimers(): void {
    const sweep = setInterval(() => this.sweep(), this.options.sweepIntervalMs ?? 1000);
    const snapshot = setInterval(
      () => this.core.journal.snapshotIfChanged(),
      this.options.snapshotIntervalMs ?? 60_000,
    );
    sweep.unref();
    snapshot.unref();
    this.timers = [sweep, snapshot];
    if (this.fences !== null || this.drops !== null) {
      const fences = setInterval(
        () => void this.applyFences(),
        this.options.fenceIntervalMs ?? 1000,
      );
      fences.unref();
      this.timers.push(fences);
      this.watchFences();
      if (this.fences !== null) {
        const gate = new StallGate(() => this.applyFences(), this.core.logger);
        this.stallGate = gate;
        this.receiver.beforeLook = () => gate.pass();
      }
    }
    this.transactions.start();
  }

  /** Finishes the dead-letter re-sends a crash cut short. One that fails (a full disk refusing
   *  the copies) leaves the broker serving, logged, and is tried again by the sweep; its dead
   *  letters stay listed until then. */
  private async finishResends(): Promise<void> {
    this.resendsLeft = false;
    try {
      await this.deadLetterQueues.recover();
    } catch (error) {
      this.resendsLeft = true;
      this.core.logger.warn(
        { err: error },
        'dead-letter re-sends cut short by a crash not finished (disk?): trying again',
      );
    }
  }

  private sweep(): void {
    if (this.resendsLeft && !this.finishingResends) {
      this.finishingResends = true;
      this.core.track(
        this.finishResends().finally(() => (this.finishingResends = false)),
        'dead-letter re-sends',
      );
    }
    const now = Date.now();
    for (const { topic, group } of [...this.ledger.configurations()]) {
      for (const sub of this.ledger.subscriptionsOfGroup(groupKey(group), storeTopic(topic))) {
        // a subscription nobody received from for two sweeps is the sweep's to dead-letter
        this.receiver.sweep(topic, group, sub, now, 2 * (this.options.sweepIntervalMs ?? 1000));
      }
    }
  }

  /** Every drop and fence waiting at start is applied before the broker serves (bounded by a
   *  deadline: a Redis that does not answer leaves them to the interval). */
  private async applyFencesAtStart(): Promise<void> {
    const deadline = Date.now() + START_FENCES_TIMEOUT_MS;
    // each on its own: drops that fail hold up no fence (a withdrawn copy would be delivered)
    for (const source of [this.drops, this.fences]) {
      try {
        if (source !== null) while ((await source.applyPending()) > 0 && Date.now() < deadline);
      } catch (error) {
        this.core.logger.warn(
          { err: error },
          'pending drops or publish fences not applied at start (Redis?): applied once it answers',
        );
      }
    }
  }

  /** Applies each fence as it is announced (a gateway just failed a call over), so a consumer
   *  is not handed a withdrawn copy in the second before the next look, and each drop (a
   *  gateway deleted a name while it took this broker for down); without a watch, or while it
   *  cannot subscribe, the interval alone applies them. */
  private watchFences(): void {
    for (const source of [this.options.pendingDrops, this.options.publishFences])
      if (source?.watch !== undefined)
        this.unwatchFences.push(source.watch(() => void this.applyFences()));
  }

  /** A round of drops, then fences; while one runs, another follows it (an announcement, the
   *  interval or the stall gate). Resolves once the round (or the one following it) is done:
   *  true when its last pass applied every fence waiting, false when one could not be read or
   *  applied (Redis away: the interval tries again). */
  private applyFences(): Promise<boolean> {
    const { drops, fences } = this;
    if ((drops === null && fences === null) || this.closing !== undefined)
      return Promise.resolve(true);
    if (this.fenceRound !== null) {
      this.fencesAgain = true;
      return this.fenceRound;
    }
    const round = async (): Promise<boolean> => {
      let applied = true;
      try {
        do {
          this.fencesAgain = false;
          this.fencePassesStarted++;
          applied = true;
          // each on its own: drops that fail hold up no fence
          for (const source of [drops, fences]) {
            try {
              if (source !== null) while ((await source.applyPending()) > 0);
            } catch (error) {
              applied = applied && source === drops;
              this.core.logger.warn(
                { err: error },
                'pending drops or publish fences not applied (Redis?): trying again',
              );
            }
          }
          this.fencePassesDone++;
          this.wakePassWaiters(false);
        } while (this.fencesAgain && this.closing === undefined);
      } finally {
        this.fenceRound = null;
        this.wakePassWaiters(true);
      }
      return applied;
    };
    this.fenceRound = round();
    this.core.track(this.fenceRound, 'pending drops and publish fences');
    return this.fenceRound;
  }

  /**
   * Resolves once a pass of drops and fences that started after this call has run: the fences
   * left before it (a client's repeat after its 503) are applied. Not once the rounds go idle:
   * a steady stream of such calls, each asking for another pass, would hold each other up.
   */
  private settleFences(): Promise<void> {
    const pass = this.fencePassesStarted + 1;
    const settled = new Promise<void>((resolve) => this.passWaiters.push({ pass, resolve }));
    void this.applyFences();
    if (this.fenceRound === null) this.wakePassWaiters(true); // nothing to run (closing)
    return settled;
  }

  /** Wakes the settleFences calls whose pass is done (all of them: `all`, the rounds stopped). */
  private wakePassWaiters(all: boolean): void {
    if (this.passWaiters.length === 0) return;
    const waiting: typeof this.passWaiters = [];
    for (const waiter of this.passWaiters)
      if (all || waiter.pass <= this.fencePassesDone) waiter.resolve();
      else waiting.push(waiter);
    this.passWaiters = waiting;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.stallGate?.close();
    for (const unwatch of this.unwatchFences.splice(0)) unwatch();
    this.transactions.close();
    this.longPoll.close();
    this.core.tenantInflight.close();
    await this.scheduler?.close();
    // batches being sealed reach the store before it closes (later ones seal inline)
    await this.sealWorkers?.close();
    await this.core.settleTasks();
    await this.core.traceLog?.flush();
    await this.core.journal.close();
    await this.store.close();
  }
}

function sameInstance(
  a: { tenantId: string; instanceId: string },
  b: { tenantId: string; instanceId: string },
): boolean {
  return a.tenantId === b.tenantId && a.instanceId === b.instanceId;
}
