// A worker thread's module for the thread-transport test: a broker on the data dir it is given,
// serving the MessagePort it is given; says 'serving' to its parent once it does (booting a
// thread that compiles TypeScript can take longer than a call's deadline on a loaded machine).
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { Broker } from '../../src/broker/index.js';
import { PortBrokerServer } from '../../src/cluster/index.js';
import { MAC_KEY } from './broker.js';

const { dir, port } = workerData as { dir: string; port: MessagePort };
const broker = await Broker.open({
  dataDir: dir,
  brokerId: 0,
  macKey: MAC_KEY,
  store: { segmentBytes: 1024 * 1024, minFreeDiskBytes: 0 },
});
new PortBrokerServer(broker, port);
parentPort?.postMessage('serving');
