// A whole node (gateway + broker on a data dir, metadata in a given Redis) for the transaction
// SIGKILL test: prints `READY <url>` once it serves, then runs until killed.
import { pino } from 'pino';
import { Broker } from '../../src/broker/index.js';
import { buildApp } from '../../src/gateway/index.js';
import { MetaStore, deriveKey } from '../../src/meta/index.js';

const [dataDir = '', redisUrl = '', masterKey = ''] = process.argv.slice(2);
const logger = pino({ level: 'silent' });
const meta = await MetaStore.open({ redisUrl, masterKey });
const broker = await Broker.open({
  dataDir,
  brokerId: 0,
  macKey: deriveKey(masterKey, 'wharf-broker-mac'),
  logger,
  dataKeys: meta.dataKeys,
});
const app = await buildApp({
  meta,
  brokers: broker,
  logger,
  config: { region: 'local', adminToken: 'unused-admin-token', docs: false },
});
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
process.stdout.write(`READY http://127.0.0.1:${port}\n`);
