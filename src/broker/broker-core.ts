// What the broker's parts share: the store, the consumer ledger and its journal, counters, long
// polling, the id and handle codecs, limits, and background-task tracking. Broker builds one and
// hands it to Publisher, Receiver, DeadLetters, Queries and Stats; none of them sees the Broker.
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';
import type { MessageIdCodec, ReceiptHandleCodec } from '../protocol/index.js';
import type { MessageStore } from '../store/index.js';
import type { BodyKeys } from './body-keys.js';
import type { BrokerLogger } from './broker-logger.js';
import type { ConsumerLedger, LedgerEntry } from './consumer-ledger.js';
import type { Counters } from './counters.js';
import { DroppedNames } from './dropped-names.js';
import { GroupResets } from './group-resets.js';
import type { LedgerJournal } from './ledger-journal.js';
import type { LongPoll } from './long-poll.js';
import { TenantInflight } from './tenant-inflight.js';
import type { TraceLog } from './trace-log.js';

export type { BrokerLogger } from './broker-logger.js';

export interface BrokerLimits {
  /** In-flight messages per queue and consumer before a queue stops handing out new ones. */
  maxInflightPerQueue: number;
  /** In-flight messages per tenant on this broker (every group, topic and consumer id) before
   *  its receives stop taking new ones (tenant-inflight.ts). */
  maxInflightPerTenant: number;
  /** Recent dedupIds answered from memory (older ones from the store's key index). */
  dedupCacheEntries: number;
}

export interface BrokerCoreParts {
  brokerId: number;
  store: MessageStore;
  ledger: ConsumerLedger;
  journal: LedgerJournal;
  counters: Counters;
  longPoll: LongPoll;
  ids: MessageIdCodec;
  receipts: ReceiptHandleCodec;
  logger: BrokerLogger;
  limits: BrokerLimits;
  bodyKeys: BodyKeys;
  traceLog: TraceLog | null;
}

/** A cluster broker's publish fences, as the publish and receive paths see them
 *  (publish-fences.ts). */
export interface FencedCalls {
  /** Whether any call was fenced lately (nearly always false: then nothing else is asked). */
  active(): boolean;
  /** Whether the copies of call `requestId` are fenced: never delivered, never a duplicate's
   *  answer, though their withdrawal may not be journaled yet. */
  fenced(requestId: string): boolean;
  /** The copy of call `requestId` is to answer a later publish as its duplicate: kept, durably
   *  (resolves once it is). */
  vouch(topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId'>, requestId: string): Promise<void>;
  /** A round of the fences waiting in Redis now (those of calls answered 503 already). */
  settle(): Promise<void>;
}

export class BrokerCore {
  readonly brokerId: number;
  readonly store: MessageStore;
  readonly ledger: ConsumerLedger;
  readonly journal: LedgerJournal;
  readonly counters: Counters;
  readonly longPoll: LongPoll;
  readonly ids: MessageIdCodec;
  readonly receipts: ReceiptHandleCodec;
  readonly logger: BrokerLogger;
  readonly limits: BrokerLimits;
  /** The in-flight bound of each tenant on this broker. */
  readonly tenantInflight: TenantInflight;
  /** Data keys of sealed bodies: seal on publish, open on every read that shows a body. */
  readonly bodyKeys: BodyKeys;
  /** Message trace, or null when tracing is off. */
  readonly traceLog: TraceLog | null;
  /** Incarnations of groups and topics dropped here: a call carrying one is refused. */
  readonly dropped = new DroppedNames();
  /** Resets of a group's position under way: a consumer seen for the first time waits them out. */
  readonly resets = new GroupResets();
  /** Set on a cluster broker (publish fences); null otherwise. */
  fencedCalls: FencedCalls | null = null;
  private readonly tasks = new Set<Promise<unknown>>();

  constructor(parts: BrokerCoreParts) {
    this.brokerId = parts.brokerId;
    this.store = parts.store;
    this.ledger = parts.ledger;
    this.journal = parts.journal;
    this.counters = parts.counters;
    this.longPoll = parts.longPoll;
    this.ids = parts.ids;
    this.receipts = parts.receipts;
    this.logger = parts.logger;
    this.limits = parts.limits;
    this.bodyKeys = parts.bodyKeys;
    this.traceLog = parts.traceLog;
    this.tenantInflight = new TenantInflight({
      limit: parts.limits.maxInflightPerTenant,
      subscriptions: () => parts.ledger.allSubscriptions(),
      onRoom: (tenantId) => parts.longPoll.notifyTenant(tenantId),
      onFull: (tenantId, inflight) =>
        parts.logger.warn(
          { tenantId, inflight, limit: parts.limits.maxInflightPerTenant },
          'tenant at its in-flight bound on this broker: its receives take no new messages ' +
            'until acks make room',
        ),
    });
  }

  /** Applies entries to the ledger now; resolves when they are durable in the journal. */
  record(entries: readonly LedgerEntry[]): Promise<void> {
    return this.journal.record(entries);
  }

  /** Appends entries and applies them once durable: a refusal leaves the ledger as it was (for
   *  a change the caller is answered about, such as a reset); `stillApplies` may pass over an
   *  entry whose subject changed while it was written. */
  recordDurably(
    entries: readonly LedgerEntry[],
    stillApplies?: (entry: LedgerEntry) => boolean,
  ): Promise<void> {
    return this.journal.recordDurably(entries, stillApplies);
  }

  /** Runs a background task that close() waits for; a failure is logged once. */
  track(task: Promise<unknown>, what: string): void {
    const tracked = task.then(
      () => undefined,
      (error: unknown) => this.logger.error({ err: error }, `${what} failed`),
    );
    this.tasks.add(tracked);
    void tracked.finally(() => this.tasks.delete(tracked));
  }

  /** Resolves when the background tasks running now have settled. */
  async settleTasks(): Promise<void> {
    await Promise.all([...this.tasks]);
  }

  /** The latest descriptors seen in calls (the background sweep needs them); throws
   *  TopicNotFound or GroupNotFound for an incarnation dropped here (a stale descriptor). */
  rememberGroup(topic: TopicDescriptor, group: GroupDescriptor): void {
    this.dropped.check(topic, group);
    const entry = this.ledger.configEntry(topic, group);
    if (entry !== null) this.track(this.record([entry]), 'journaling group settings');
  }
}
