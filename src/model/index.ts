// The model room's face: the shared message model that meta, gateway, cluster and broker all
// speak — topic and group descriptors, message types, and the publish / receive / message-view
// fields. It owns data shapes only (no behaviour, no I/O, imports nothing), so every room may
// import it and it imports no room; RPC-only shapes (ack results, stats, pages) stay in cluster.

/** Topic and group descriptors: the records meta stores and every broker call carries. */
export type {
  DeliveryMode,
  GroupDescriptor,
  MessageType,
  RetryPolicy,
  TopicDescriptor,
} from './descriptors.js';
/** Message fields as published, received, viewed, traced and dead-lettered. */
export type {
  BodyEncoding,
  CheckedMessage,
  DeadLetter,
  GroupMessageState,
  MessageFields,
  MessageView,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  TraceEvent,
  TransactionCheckRequest,
  TransactionDecisionOptions,
} from './messages.js';
/** The delay wheel's entries, claims and mark (broker and meta). */
export type { ClaimResult, WheelClaim, WheelEntry, WheelMark } from './schedule-wheel.js';
export type {
  DedupRedirects,
  DedupScope,
  PublishFence,
  PublishFenceSink,
  PublishFenceSource,
} from './publish-fences.js';
export { dedupScopeKey } from './publish-fences.js';
/** Drops left for a broker that was down when a topic, group or instance was deleted. */
export type {
  DropTarget,
  PendingDrop,
  PendingDropSink,
  PendingDropSource,
} from './pending-drops.js';
export { describeDrop, droppedName, dropTenant, namedDrop } from './pending-drops.js';
/** Every trace event type (one list for codecs, RPC shapes and the API schema). */
export { TRACE_EVENT_TYPES } from './messages.js';
