// BrokerClient for the all-in-one node: the broker in the same process, behind the interface.
import type { BrokerClient } from './broker-client.js';

/** The in-process transport is the broker itself, behind the interface. */
export function inProcessBrokerClient(broker: BrokerClient): BrokerClient {
  return broker;
}
