// The cluster room's face: the BrokerClient contract and its transports.
export * from './broker-client.js';
export { inProcessBrokerClient } from './in-process-broker-client.js';
