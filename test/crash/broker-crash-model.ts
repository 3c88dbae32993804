// What the broker crash child and its parent agree on.
import type { GroupDescriptor, TopicDescriptor } from '../../src/model/index.js';

export const CRASH_MAC_KEY = Buffer.alloc(32, 3);

export const CRASH_TOPIC: TopicDescriptor = {
  tenantId: 'crash',
  instanceId: 'inst',
  topic: 'orders',
  messageType: 'NORMAL',
  queueCount: 3,
  retentionHours: 72,
  dedupWindowMs: 600_000,
  createdAt: 0,
};

export const CRASH_GROUP: GroupDescriptor = {
  tenantId: 'crash',
  instanceId: 'inst',
  group: 'workers',
  deliveryMode: 'CLUSTERING',
  maxDeliveryAttempts: 1000,
  invisibleSeconds: 1,
  retryPolicy: { backoffSeconds: [0] },
  createdAt: 0,
};
