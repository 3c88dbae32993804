// The one way the gateway reaches brokers. The gateway resolves tenancy and metadata (Redis) and
// passes the resolved descriptors; a broker keeps no metadata of its own beyond what a call
// carries. Implementations: in-process (all-in-one) and network (cluster). Errors are WharfErrors
// (Unavailable when the broker cannot be reached or is shutting down).

import { isWharfError } from '../errors.js';
import type {
  CheckedMessage,
  DeadLetter,
  GroupDescriptor,
  MessageView,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
  TraceEvent,
  TransactionCheckRequest,
  TransactionDecisionOptions,
} from '../model/index.js';

export type AckResult =
  | { receiptHandle: string; ok: true }
  | {
      receiptHandle: string;
      ok: false;
      /** Unavailable: the broker holding the message is down (a cluster gateway's answer). */
      code: 'ReceiptHandleExpired' | 'InvalidReceiptHandle' | 'Unavailable';
    };

export interface VisibilityResult {
  receiptHandle: string;
  nextVisibleTime: number;
}

export interface TimeQuery {
  fromMs: number;
  toMs: number;
  limit: number;
  cursor?: string;
}

export interface MessagePage {
  messages: MessageView[];
  nextCursor?: string;
}

export type ResetTarget = 'earliest' | 'latest' | number;

export interface TopicStats {
  messagesIn: number;
  bytesIn: number;
  publishRatePerSecond: number;
  queues: { queueId: number; minOffset: number; maxOffset: number }[];
  /** The groups that have received from the topic (not in the public answer; unset from a
   *  broker of an earlier version: every group may have). */
  consumingGroups?: string[];
}

export interface GroupStats {
  backlog: number;
  inflight: number;
  oldestUnackedAgeMs: number;
  deliveredRatePerSecond: number;
  ackedRatePerSecond: number;
  retries: number;
  deadLetters: number;
}

export interface BrokerHealth {
  ready: boolean;
  detail?: string;
  /** A cluster gateway's view: every registered broker and whether it answers. */
  brokers?: BrokerReach[];
}

export interface BrokerReach {
  id: number;
  /** `host:port`, or `in-process` in the all-in-one node. */
  address: string;
  state: 'ready' | 'not ready' | 'unreachable' | 'down';
}

export interface BrokerClient {
  publish(topic: TopicDescriptor, messages: PublishMessage[]): Promise<PublishResult[]>;
  /** Resolves with an empty list when nothing arrived in `waitMs`; aborting frees the slot. */
  receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]>;
  ack(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<AckResult[]>;
  changeVisibility(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandle: string,
    invisibleMs: number,
  ): Promise<VisibilityResult>;
  /** Gives back deliveries nobody saw: visible again at once, and they do not count as a
   *  delivery attempt. Handles no longer current are passed over. */
  returnMessages(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<void>;
  getMessage(topic: TopicDescriptor, messageId: string): Promise<MessageView>;
  /** Cancels a delayed message not yet delivered (MessageNotFound; Conflict once delivered). */
  cancelMessage(topic: TopicDescriptor, messageId: string): Promise<void>;
  queryByKey(topic: TopicDescriptor, key: string, limit: number): Promise<MessageView[]>;
  queryByTime(topic: TopicDescriptor, query: TimeQuery): Promise<MessagePage>;
  trace(topic: TopicDescriptor, messageId: string): Promise<TraceEvent[]>;
  resetGroup(topic: TopicDescriptor, group: GroupDescriptor, to: ResetTarget): Promise<void>;
  deadLetters(
    group: GroupDescriptor,
    limit: number,
    cursor?: string,
  ): Promise<{ messages: DeadLetter[]; nextCursor?: string }>;
  resendDeadLetters(
    group: GroupDescriptor,
    messageIds: string[],
  ): Promise<{ messageId: string; ok: boolean; code?: string }[]>;
  topicStats(topic: TopicDescriptor): Promise<TopicStats>;
  groupStats(topic: TopicDescriptor, group: GroupDescriptor): Promise<GroupStats>;
  /** Forget a deleted topic / group (consume queues, consumer state). */
  dropTopic(topic: TopicDescriptor): Promise<void>;
  dropGroup(group: GroupDescriptor): Promise<void>;
  /** Forget a deleted instance (after its topics and groups): its internal topics (trace) go and
   *  its data key is forgotten, so its sealed bodies no longer open. */
  dropInstance(tenantId: string, instanceId: string): Promise<void>;
  health(): Promise<BrokerHealth>;
  /** Places a created or grown topic's new queues on brokers (a cluster); absent in-process,
   *  where every queue is the one broker's. */
  placeTopic?(topic: TopicDescriptor): Promise<void>;
  close(): Promise<void>;
  // ---- transactions (the transaction id routes to the broker holding the half message) ----
  /** Makes a half message deliverable; idempotent unless `options.refuseRepeat`.
   *  TransactionNotFound, or Conflict after a rollback. */
  commitTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options?: TransactionDecisionOptions,
  ): Promise<void>;
  /** Discards a half message; idempotent unless `options.refuseRepeat`. TransactionNotFound, or
   *  Conflict after a commit. */
  rollbackTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options?: TransactionDecisionOptions,
  ): Promise<void>;
  /** Undecided half messages overdue for a decision, each offered once (long poll like receive). */
  checkTransactions(
    topic: TopicDescriptor,
    request: TransactionCheckRequest,
    signal?: AbortSignal,
  ): Promise<CheckedMessage[]>;
}

/** Gives back received messages nobody will see: visible again at once, the delivery not
 *  counted. Best effort: false when it failed, which leaves them to their invisibility
 *  deadline, as for a consumer that crashed. */
export async function returnUnseen(
  broker: Pick<BrokerClient, 'returnMessages' | 'changeVisibility'>,
  topic: TopicDescriptor,
  group: GroupDescriptor,
  messages: readonly ReceivedMessage[],
): Promise<boolean> {
  if (messages.length === 0) return true;
  try {
    await broker.returnMessages(
      topic,
      group,
      messages.map((m) => m.receiptHandle),
    );
    return true;
  } catch (error) {
    // a broker of an earlier version (a rolling upgrade) does not know the call: visible again
    // at once all the same, the delivery counted as it was then
    if (!isWharfError(error) || error.code !== 'UnsupportedFormat') return false;
    const released = await Promise.allSettled(
      messages.map((m) => broker.changeVisibility(topic, group, m.receiptHandle, 0)),
    );
    return released.every((r) => r.status === 'fulfilled');
  }
}
