// The cluster room's face: the BrokerClient contract, its RPC-only shapes and its transports.
// The message model the calls carry (descriptors, message fields) is the model room's.

/** The one way the gateway reaches brokers, and the shapes only its calls use. */
export type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  GroupStats,
  MessagePage,
  ResetTarget,
  TimeQuery,
  TopicStats,
  VisibilityResult,
} from './broker-client.js';
/** The in-process transport of the all-in-one node. */
export { inProcessBrokerClient } from './in-process-broker-client.js';
