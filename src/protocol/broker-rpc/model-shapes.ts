// Shapes of the message model and of the RPC-only answers, for the JSON parts of broker RPC
// payloads. The RPC-only types mirror cluster's BrokerClient shapes (protocol may not import
// cluster): the network client returns them as cluster's types and the server encodes cluster's
// results as these, so tsc checks the two agree in both directions.
import type {
  CheckedMessage,
  DeadLetter,
  GroupDescriptor,
  MessageView,
  TopicDescriptor,
  TraceEvent,
  TransactionCheckRequest,
} from '../../model/index.js';
import { TRACE_EVENT_TYPES } from '../../model/index.js';
import {
  array,
  boolean,
  buffer,
  literal,
  nullable,
  number,
  object,
  optional,
  record,
  string,
  union,
  type Shape,
} from './shape.js';

export const topicDescriptorShape: Shape<TopicDescriptor> = object({
  tenantId: string,
  instanceId: string,
  topic: string,
  messageType: literal('NORMAL', 'FIFO', 'DELAY', 'TRANSACTION'),
  queueCount: number,
  retentionHours: number,
  dedupWindowMs: number,
  createdAt: number,
});

export const groupDescriptorShape: Shape<GroupDescriptor> = object({
  tenantId: string,
  instanceId: string,
  group: string,
  deliveryMode: literal('CLUSTERING', 'BROADCASTING'),
  maxDeliveryAttempts: number,
  invisibleSeconds: number,
  retryPolicy: optional(
    union(
      object({ backoffSeconds: array(number) }),
      object({
        exponential: object({ initialSeconds: number, multiplier: number, maxSeconds: number }),
      }),
    ),
  ),
  createdAt: number,
  incarnation: optional(string),
});

const messageFields = {
  body: buffer,
  bodyEncoding: literal('utf8', 'base64'),
  tag: nullable(string),
  keys: array(string),
  properties: record(string),
};

export const messageViewShape: Shape<MessageView> = object({
  ...messageFields,
  shardingKey: nullable(string),
  messageId: string,
  topic: string,
  queueId: number,
  queueOffset: number,
  publishTime: number,
  deliverAt: optional(number),
  scheduleState: optional(literal('SCHEDULED', 'CANCELLED', 'DELIVERED')),
  groups: optional(
    array(
      object({
        group: string,
        consumerId: optional(string),
        state: literal('PENDING', 'INFLIGHT', 'ACKED', 'DEAD_LETTERED', 'FILTERED'),
        deliveryAttempt: number,
      }),
    ),
  ),
});

export const traceEventShape: Shape<TraceEvent> = object({
  type: literal(...TRACE_EVENT_TYPES),
  time: number,
  group: optional(string),
  consumerId: optional(string),
  deliveryAttempt: optional(number),
  queueId: optional(number),
  checkCount: optional(number),
  reason: optional(string),
});

export const checkedMessageShape: Shape<CheckedMessage> = object({
  ...messageFields,
  shardingKey: nullable(string),
  transactionId: string,
  messageId: string,
  publishTime: number,
  checkCount: number,
  nextCheckTime: optional(number),
});

export const transactionCheckRequestShape: Shape<TransactionCheckRequest> = object({
  maxMessages: number,
  waitMs: number,
  // added to cap answers in the broker; a broker before it keeps the key unread
  maxBodyBytes: optional(number),
});

export const deadLetterShape: Shape<DeadLetter> = object({
  ...messageFields,
  messageId: string,
  topic: string,
  publishTime: number,
  deadLetteredAt: number,
  deliveryAttempt: number,
});

export interface TimeQuery {
  fromMs: number;
  toMs: number;
  limit: number;
  cursor?: string;
}

export const timeQueryShape: Shape<TimeQuery> = object({
  fromMs: number,
  toMs: number,
  limit: number,
  cursor: optional(string),
});

export interface MessagePage {
  messages: MessageView[];
  nextCursor?: string;
}

export const messagePageShape: Shape<MessagePage> = object({
  messages: array(messageViewShape),
  nextCursor: optional(string),
});

export interface VisibilityResult {
  receiptHandle: string;
  nextVisibleTime: number;
}

export const visibilityResultShape: Shape<VisibilityResult> = object({
  receiptHandle: string,
  nextVisibleTime: number,
});

export type ResetTarget = 'earliest' | 'latest' | number;

export const resetTargetShape: Shape<ResetTarget> = union(literal('earliest', 'latest'), number);

export interface TopicStats {
  messagesIn: number;
  bytesIn: number;
  publishRatePerSecond: number;
  queues: { queueId: number; minOffset: number; maxOffset: number }[];
}

export const topicStatsShape: Shape<TopicStats> = object({
  messagesIn: number,
  bytesIn: number,
  publishRatePerSecond: number,
  queues: array(object({ queueId: number, minOffset: number, maxOffset: number })),
  // added for the metrics sampler; a gateway before it keeps the key unread
  consumingGroups: optional(array(string)),
});

export interface GroupStats {
  backlog: number;
  inflight: number;
  oldestUnackedAgeMs: number;
  deliveredRatePerSecond: number;
  ackedRatePerSecond: number;
  retries: number;
  deadLetters: number;
}

export const groupStatsShape: Shape<GroupStats> = object({
  backlog: number,
  inflight: number,
  oldestUnackedAgeMs: number,
  deliveredRatePerSecond: number,
  ackedRatePerSecond: number,
  retries: number,
  deadLetters: number,
});

export interface BrokerHealth {
  ready: boolean;
  detail?: string;
}

export const brokerHealthShape: Shape<BrokerHealth> = object({
  ready: boolean,
  detail: optional(string),
});

export interface DeadLetterPage {
  messages: DeadLetter[];
  nextCursor?: string;
}

export const deadLetterPageShape: Shape<DeadLetterPage> = object({
  messages: array(deadLetterShape),
  nextCursor: optional(string),
});

export interface ResendResult {
  messageId: string;
  ok: boolean;
  code?: string;
}

export const resendResultShape: Shape<ResendResult> = object({
  messageId: string,
  ok: boolean,
  code: optional(string),
});
