// The one way the gateway reaches brokers. The gateway resolves tenancy and metadata (Redis) and
// passes the resolved descriptors; a broker keeps no metadata of its own beyond what a call
// carries. Implementations: in-process (all-in-one) and network (cluster). Errors are WharfErrors
// (Unavailable when the broker cannot be reached or is shutting down).

export type MessageType = 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION';
export type DeliveryMode = 'CLUSTERING' | 'BROADCASTING';
export type BodyEncoding = 'utf8' | 'base64';

export type RetryPolicy =
  | { backoffSeconds: number[] }
  | { exponential: { initialSeconds: number; multiplier: number; maxSeconds: number } };

export interface TopicDescriptor {
  tenantId: string;
  instanceId: string;
  topic: string;
  messageType: MessageType;
  queueCount: number;
  retentionHours: number;
  /** Dedup window of `dedupId`, default 10 min. */
  dedupWindowMs: number;
  createdAt: number;
}

export interface GroupDescriptor {
  tenantId: string;
  instanceId: string;
  group: string;
  deliveryMode: DeliveryMode;
  maxDeliveryAttempts: number;
  invisibleSeconds: number;
  /** Absent: RocketMQ's default levels (1s 5s 10s 30s 1m … 2h). */
  retryPolicy?: RetryPolicy;
  createdAt: number;
  /**
   * Random, set when the group is created and kept across updates: a group deleted and created
   * again has a new one, so receipt handles of the old group are refused. Absent on groups
   * created before incarnations existed (their createdAt stands in).
   */
  incarnation?: string;
}

export interface PublishMessage {
  body: Buffer;
  bodyEncoding: BodyEncoding;
  tag?: string;
  keys?: string[];
  properties?: Record<string, string>;
  shardingKey?: string;
  dedupId?: string;
  /** Absolute delivery time; absent or past means now. */
  deliverAtMs?: number;
}

export interface PublishResult {
  messageId: string;
  queueId: number;
  bodyMd5: string;
  duplicate?: boolean;
  transactionId?: string;
}

export interface ReceiveRequest {
  maxMessages: number;
  waitMs: number;
  /** `*` or `A||B`. */
  tags: string;
  invisibleMs?: number;
  consumerId?: string;
}

/** What a publisher gave a message, as every answer shows it. */
export interface MessageFields {
  body: Buffer;
  bodyEncoding: BodyEncoding;
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  shardingKey: string | null;
}

export interface ReceivedMessage extends MessageFields {
  messageId: string;
  receiptHandle: string;
  queueId: number;
  queueOffset: number;
  publishTime: number;
  firstDeliveryTime: number;
  deliveryAttempt: number;
  nextVisibleTime: number;
}

export type AckResult =
  | { receiptHandle: string; ok: true }
  | { receiptHandle: string; ok: false; code: 'ReceiptHandleExpired' | 'InvalidReceiptHandle' };

export interface VisibilityResult {
  receiptHandle: string;
  nextVisibleTime: number;
}

export type GroupMessageState = 'PENDING' | 'INFLIGHT' | 'ACKED' | 'DEAD_LETTERED' | 'FILTERED';

export interface MessageView extends MessageFields {
  messageId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  publishTime: number;
  deliverAt?: number;
  /** Per group that has read this topic. */
  groups?: {
    group: string;
    consumerId?: string;
    state: GroupMessageState;
    deliveryAttempt: number;
  }[];
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

export interface TraceEvent {
  type:
    | 'PUBLISHED'
    | 'SCHEDULED'
    | 'COMMITTED'
    | 'ROLLED_BACK'
    | 'DELIVERED'
    | 'ACKED'
    | 'RETRIED'
    | 'DEAD_LETTERED'
    | 'RESENT';
  time: number;
  group?: string;
  consumerId?: string;
  deliveryAttempt?: number;
  queueId?: number;
}

export type ResetTarget = 'earliest' | 'latest' | number;

export interface DeadLetter extends Omit<MessageFields, 'shardingKey'> {
  messageId: string;
  topic: string;
  publishTime: number;
  deadLetteredAt: number;
  deliveryAttempt: number;
}

export interface TopicStats {
  messagesIn: number;
  bytesIn: number;
  publishRatePerSecond: number;
  queues: { queueId: number; minOffset: number; maxOffset: number }[];
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
  getMessage(topic: TopicDescriptor, messageId: string): Promise<MessageView>;
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
  close(): Promise<void>;
}
