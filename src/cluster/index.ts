// The cluster room's face: the BrokerClient contract, its RPC-only shapes and its transports.
// The message model the calls carry (descriptors, message fields) is the model room's.

/** The one way the gateway reaches brokers, and the shapes only its calls use. */
export type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  BrokerReach,
  GroupStats,
  MessagePage,
  ResetTarget,
  TimeQuery,
  TopicStats,
  VisibilityResult,
} from './broker-client.js';
/** Gives back deliveries nobody saw (they do not count as an attempt). */
export { returnUnseen } from './broker-client.js';
/** The in-process transport of the all-in-one node. */
export { inProcessBrokerClient } from './in-process-broker-client.js';
/** Drops a broker did not carry out, left in Redis for it (the all-in-one node's one broker). */
export { leavingFailedDrops } from './dropped-names.js';
/** The network transports (issue #11): a BrokerClient calling a remote broker over TCP frames or
 *  HTTP/2, and the servers that expose a broker to them. */
export {
  NetworkBrokerClient,
  http2BrokerClient,
  tcpBrokerClient,
  type NetworkClientOptions,
} from './network-broker-client.js';
export { TcpRpcChannel, type TcpChannelOptions } from './tcp-rpc-channel.js';
export { Http2RpcChannel, type Http2ChannelOptions } from './http2-rpc-channel.js';
export type { ChannelOptions, RpcChannel } from './rpc-channel.js';
export { TcpBrokerServer, type BrokerServerOptions } from './tcp-broker-server.js';
export { Http2BrokerServer } from './http2-broker-server.js';
/** The thread transport: a broker on another thread of this process, over a MessagePort. */
export { PortRpcChannel } from './port-rpc-channel.js';
export { PortBrokerServer } from './port-broker-server.js';
export { dispatchBrokerRpc } from './broker-rpc-dispatch.js';
/** The cluster gateway's BrokerClient: routes each call to the brokers the registry, the queue
 *  placement, the message id or the receipt handle name (issue #11). */
export {
  RoutingBrokerClient,
  type BrokerAddress,
  type BrokerAddressBook,
  type PlacementSource,
  type RoutingOptions,
} from './routing-broker-client.js';
