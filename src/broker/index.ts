// The broker room's face.
export { Broker, type BrokerOptions, type BrokerLogger } from './broker.js';
/** The sharding key's queue hash (a cluster gateway picks a FIFO message's queue by it). */
export { shardingHash } from './publisher.js';
