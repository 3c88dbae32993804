// A message as publishers give it and consumers, queries and dead-letter listings see it: the
// publish and receive fields, the message views and the trace events. Plain data shared by the
// gateway (codecs, schemas), the cluster (BrokerClient) and the broker; no imports.

export type BodyEncoding = 'utf8' | 'base64';

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
  /** The queue the gateway chose (cluster: the queue decides the broker); absent: the broker
   *  chooses (round robin, or the sharding key's hash). Never set by clients. */
  queueId?: number;
  /** The cluster gateway's id for the broker call that carried this message (the same for
   *  every message of the call): stored with it, so that a call the gateway gave up on and sent
   *  to another broker can be withdrawn here (publish fences, src/broker/publish-fences.ts).
   *  Never set by clients. */
  requestId?: string;
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
  /**
   * At most this many bytes of bodies in the answer, as stored (at least one message): what does
   * not fit is left for the next receive, not read. Unset: no byte limit.
   */
  maxBodyBytes?: number;
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
  /** A delayed or timed message: the time it was due (its publish's deliverAt). Absent for
   *  others, and for copies made before brokers kept it. */
  deliverAt?: number;
}

export type GroupMessageState = 'PENDING' | 'INFLIGHT' | 'ACKED' | 'DEAD_LETTERED' | 'FILTERED';

export interface MessageView extends MessageFields {
  messageId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  publishTime: number;
  deliverAt?: number;
  /** Delayed messages only: SCHEDULED until its time (queueOffset -1), CANCELLED, or DELIVERED
   *  (then queueId, queueOffset and groups are those of the delivered message). */
  scheduleState?: 'SCHEDULED' | 'CANCELLED' | 'DELIVERED';
  /** Per group that has read this topic. */
  groups?: {
    group: string;
    consumerId?: string;
    state: GroupMessageState;
    deliveryAttempt: number;
  }[];
}

/** Every trace event type, in the order of a message's life (one list for the trace codec, the
 *  RPC shapes and the API schema). */
export const TRACE_EVENT_TYPES = [
  'PUBLISHED',
  'SCHEDULED',
  'CANCELLED',
  'COMMITTED',
  'ROLLED_BACK',
  'DELIVERED',
  'ACKED',
  'RETRIED',
  'DEAD_LETTERED',
  'RESENT',
  'CHECKED',
] as const;

export interface TraceEvent {
  type: (typeof TRACE_EVENT_TYPES)[number];
  time: number;
  group?: string;
  consumerId?: string;
  deliveryAttempt?: number;
  queueId?: number;
  /** CHECKED and automatic ROLLED_BACK events: offers made so far. */
  checkCount?: number;
  /** An automatic ROLLED_BACK: `CHECK_LIMIT` (offers unanswered) or `AGE_LIMIT`. */
  reason?: string;
}

/** How a commit or rollback is made. */
export interface TransactionDecisionOptions {
  /** The decision already made, repeated, is Conflict instead of a no-op (the Aliyun MQ HTTP
   *  protocol's rule: a decided half message's handles are no longer valid). */
  refuseRepeat?: boolean;
}

/** A check-back request on a TRANSACTION topic. */
export interface TransactionCheckRequest {
  maxMessages: number;
  waitMs: number;
  /**
   * At most this many bytes of bodies, as stored (at least one offer): halves past it stay due
   * and are not counted as offered. Unset: no byte limit.
   */
  maxBodyBytes?: number;
}

/** An undecided half message offered to its producer for a decision. */
export interface CheckedMessage extends MessageFields {
  transactionId: string;
  messageId: string;
  publishTime: number;
  /** Offers of this message so far, this one included. */
  checkCount: number;
  /** When it is offered again if no decision comes (epoch ms; absent from a broker that does
   *  not say). */
  nextCheckTime?: number;
}

export interface DeadLetter extends Omit<MessageFields, 'shardingKey'> {
  messageId: string;
  topic: string;
  publishTime: number;
  deadLetteredAt: number;
  deliveryAttempt: number;
}
