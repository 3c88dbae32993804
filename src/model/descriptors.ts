// What a topic and a consumer group are, as Redis stores them (meta), the gateway resolves them
// and every broker call carries them: the descriptors. Plain data, no behaviour and no imports;
// a broker keeps no metadata of its own beyond what a call carries.
export type MessageType = 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION';
export type DeliveryMode = 'CLUSTERING' | 'BROADCASTING';

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
