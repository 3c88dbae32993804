// `wharf gateway`: a stateless gateway of a cluster. It follows the broker registry in Redis,
// routes every call through the RoutingBrokerClient (one TCP client per broker) and serves the
// same HTTP API as the all-in-one node. Stops in the order that loses nothing: stop accepting and
// drain requests (parked receives answer at once), close the broker connections, Redis.
import { join } from 'node:path';
import { RoutingBrokerClient, tcpBrokerClient } from '../cluster/index.js';
import { RedisPendingDropSink, RedisPublishFenceSink } from '../meta/index.js';
import { GatewayMetrics, type Logger } from '../telemetry/index.js';
import { MIN_ADMIN_TOKEN_CHARS, type WharfConfig } from './config.js';
import { requireShared } from './broker-process.js';
import { brokerMacKey, openMeta } from './broker-setup.js';
import { StartupError, loadOrCreateSecret, startAlarmsAndGateway } from './node.js';
import { stopSteps } from './stop-steps.js';

export interface RunningGateway {
  url: string;
  adminToken: string;
  stop(): Promise<void>;
}

/** `host:port` → the parts a TCP client takes (an IPv6 host in brackets). */
export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return {
    host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'),
    port: Number(address.slice(at + 1)),
  };
}

export async function startGateway(config: WharfConfig, logger: Logger): Promise<RunningGateway> {
  const { redisUrl, masterKey } = requireShared(config, 'gateway');
  const adminToken =
    config.adminToken ??
    loadOrCreateSecret(join(config.dataDir, 'admin.token'), MIN_ADMIN_TOKEN_CHARS);
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const meta = await openMeta(config, redisUrl, masterKey, logger).catch((cause: unknown) => {
      throw new StartupError(`cannot reach Redis: ${(cause as Error).message}`);
    });
    cleanup.unshift(() => meta.close());
    const clusterLogger = logger.child({ room: 'cluster' });
    const directory = await meta.openBrokerDirectory({ logger: clusterLogger });
    cleanup.unshift(() => Promise.resolve(directory.close()));
    directory.onChange((brokers) =>
      clusterLogger.info(
        {
          brokers: [...brokers.values()].map((b) => ({
            id: b.brokerId,
            address: b.address,
            live: b.live,
          })),
        },
        'broker registry changed',
      ),
    );
    const brokers = new RoutingBrokerClient({
      directory,
      placements: meta.placements,
      connect: (address) => tcpBrokerClient(splitAddress(address)),
      fences: new RedisPublishFenceSink(meta.redis, meta.keys),
      dedupRedirects: meta.dedupRedirects(),
      drops: new RedisPendingDropSink(meta.redis, meta.keys),
      macKey: brokerMacKey(masterKey),
      logger: clusterLogger,
    });
    cleanup.unshift(() => brokers.close());
    const metrics = new GatewayMetrics();
    const url = await startAlarmsAndGateway(
      config,
      { meta, brokers, redisUrl, metrics, logger, adminToken },
      cleanup,
    );
    logger.info(
      { brokers: [...directory.brokers.keys()], url },
      'gateway routing to the registered brokers',
    );
    return {
      url,
      adminToken,
      stop: stopSteps(cleanup),
    };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw err;
  }
}
