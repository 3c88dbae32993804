// What the broker's parts share: the store, the consumer ledger and its journal, long polling,
// the id and handle codecs, limits, counters and background-task tracking. Broker builds one and
// hands it to Publisher, Receiver, DeadLetters and Queries.
import type { GroupDescriptor, TopicDescriptor } from '../cluster/broker-client.js';
import type { MessageIdCodec, ReceiptHandleCodec } from '../protocol/index.js';
import type { MessageStore } from '../store/index.js';
import type { BodyKeys } from './body-keys.js';
import type { ConsumerLedger, LedgerEntry } from './consumer-ledger.js';
import type { LongPoll } from './long-poll.js';
import type { RateCounter } from './rate-counter.js';
import type { TraceLog } from './trace-log.js';

export interface BrokerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BrokerLimits {
  /** In-flight messages per queue and consumer before a queue stops handing out new ones. */
  maxInflightPerQueue: number;
  /** Recent dedupIds answered from memory (older ones from the store's key index). */
  dedupCacheEntries: number;
}

export interface TopicCounters {
  publish: RateCounter;
  bytesIn: number;
}

export interface SubscriptionCounters {
  delivered: RateCounter;
  acked: RateCounter;
}

export interface BrokerCore {
  readonly brokerId: number;
  readonly store: MessageStore;
  readonly ledger: ConsumerLedger;
  readonly longPoll: LongPoll;
  readonly ids: MessageIdCodec;
  readonly receipts: ReceiptHandleCodec;
  readonly logger: BrokerLogger;
  readonly limits: BrokerLimits;
  /** Data keys of sealed bodies: seal on publish, open on every read that shows a body. */
  readonly bodyKeys: BodyKeys;
  /** Message trace, or null when tracing is off. */
  readonly traceLog: TraceLog | null;
  /** Applies entries to the ledger now; resolves when they are durable in the journal. */
  record(entries: readonly LedgerEntry[]): Promise<void>;
  /** Runs a background task that close() waits for; a failure is logged once. */
  track(task: Promise<unknown>, what: string): void;
  topicCounters(storeTopic: string): TopicCounters;
  subscriptionCounters(subscriptionKey: string): SubscriptionCounters;
  /** The latest descriptors seen in calls (the background sweep needs them). */
  rememberGroup(topic: TopicDescriptor, group: GroupDescriptor): void;
}
