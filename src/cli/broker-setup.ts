// What every process that opens a broker does the same way: the all-in-one node and a cluster
// broker open their Redis metadata connection and their broker from the config alike.
import { join } from 'node:path';
import { Broker, type BrokerOptions } from '../broker/index.js';
import { MetaStore, RedisScheduleWheel, deriveKey } from '../meta/index.js';
import type { CommitObserver } from '../store/index.js';
import type { Logger } from '../telemetry/index.js';
import type { WharfConfig } from './config.js';
import { StartupError } from './startup-error.js';

/** The id of the all-in-one node's one broker: its ids, handles, wheel keys and metrics. */
export const ALL_IN_ONE_BROKER_ID = 0;

/** The MetaStore of a process, from its config; refused when its master key is not the one
 *  the metadata in this Redis was sealed with. */
export async function openMeta(
  config: WharfConfig,
  redisUrl: string,
  masterKey: string,
  logger: Logger,
): Promise<MetaStore> {
  const meta = await MetaStore.open({
    redisUrl,
    masterKey,
    cacheTtlMs: config.metaCacheMs,
    commandTimeoutMs: config.redisTimeoutMs,
    logger: logger.child({ room: 'meta' }),
  });
  if (!(await meta.masterKeyOpensMetadata())) {
    await meta.close();
    throw new StartupError(
      'WHARF_MASTER_KEY is not the key the metadata in this Redis was sealed with: no access ' +
        'key, token or stored body would open. Start with the key this Redis was used with',
    );
  }
  return meta;
}

/** The key brokers MAC ids and handles with (every process derives it from the master key). */
export function brokerMacKey(masterKey: string): Buffer {
  return deriveKey(masterKey, 'wharf-broker-mac');
}

export interface BrokerSetup {
  config: WharfConfig;
  /** The process's data dir; the broker's store is its `broker-<id>` directory. */
  dataDir: string;
  brokerId: number;
  masterKey: string;
  meta: MetaStore;
  logger: Logger;
  commitObserver?: CommitObserver;
  publishFences?: BrokerOptions['publishFences'];
  pendingDrops?: BrokerOptions['pendingDrops'];
}

/** Opens the broker a config describes (replays its store; may take a while). */
export function openConfiguredBroker(setup: BrokerSetup): Promise<Broker> {
  const { config, meta, brokerId } = setup;
  return Broker.open({
    dataDir: join(setup.dataDir, `broker-${brokerId}`),
    brokerId,
    macKey: brokerMacKey(setup.masterKey),
    logger: setup.logger,
    store:
      setup.commitObserver === undefined
        ? config.broker
        : { ...config.broker, commitObserver: setup.commitObserver },
    trace: config.broker.trace,
    openedBodyCacheBytes: config.broker.openedBodyCacheBytes,
    sealThreads: config.broker.sealThreads,
    transactions: { checkDelayMs: config.broker.transactionCheckDelayMs },
    limits: { maxInflightPerTenant: config.broker.maxInflightPerTenant },
    dataKeys: meta.dataKeys,
    scheduleWheel: new RedisScheduleWheel(meta.redis, meta.keys, String(brokerId)),
    ...(setup.publishFences === undefined ? {} : { publishFences: setup.publishFences }),
    ...(setup.pendingDrops === undefined ? {} : { pendingDrops: setup.pendingDrops }),
  });
}
