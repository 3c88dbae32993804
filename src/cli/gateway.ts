// A gateway-only process for running several gateways behind a load balancer on one Redis.
// Until the network BrokerClient exists (cluster work), it opens its broker in process, so it is
// the all-in-one node with a shared Redis required: WHARF_REDIS_URL must be set, since gateways
// that each start a private Redis would not share tenants.
// TODO(#cluster): take the BrokerClient from the network transport and the broker registry.
import { ConfigError, loadConfig } from './config.js';
import { StartupError, createNodeLogger, startNode, stopOnSignals } from './node.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
    if (config.redisUrl === undefined || config.redisUrl === 'private') {
      throw new ConfigError(['WHARF_REDIS_URL: a gateway process needs the shared Redis URL']);
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`wharf-gateway: ${err.message}\n`);
    process.exit(2);
  }
  const logger = createNodeLogger(config);
  logger.warn('no network broker transport yet: this gateway runs its broker in process');
  try {
    const node = await startNode(config, logger);
    stopOnSignals(node, logger);
    logger.info({ url: node.url }, 'gateway listening');
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`wharf-gateway: ${err.message}\n`);
      process.exit(1);
    }
    logger.fatal({ err }, 'start failed');
    process.exit(1);
  }
}

await main();
