// The broker room's face.
export { Broker, type BrokerOptions, type BrokerLogger } from './broker.js';
