// The three ways to run Wharf, one function each: the all-in-one node (gateway and broker in one
// process), a cluster gateway and a cluster broker. Each loads the config from the environment,
// starts, prints where it serves and stops on SIGTERM/SIGINT (or once stdin closes, with
// WHARF_STOP_ON_STDIN_CLOSE: `npm run cluster`'s processes). A bad config exits 2, a refused
// start (a held data dir or broker id, no Redis) exits 1 with one clear line.
import { banner } from './banner.js';
import { startBroker } from './broker-process.js';
import { ConfigError, loadConfig, type WharfConfig } from './config.js';
import { startGateway } from './gateway-process.js';
import { StartupError, createNodeLogger, startNode, stopOnSignals } from './node.js';
import type { Logger } from '../telemetry/index.js';

export const ROLES = ['all-in-one', 'gateway', 'broker'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string | undefined): value is Role {
  return ROLES.includes(value as Role);
}

const STARTERS: Record<
  Role,
  (config: WharfConfig, logger: Logger) => Promise<{ stop(): Promise<void> }>
> = {
  'all-in-one': async (config, logger) => {
    const node = await startNode(config, logger);
    process.stdout.write(`${banner(node)}\n`);
    return node;
  },
  gateway: async (config, logger) => {
    const gateway = await startGateway(config, logger);
    logger.info({ url: gateway.url }, 'gateway listening');
    return gateway;
  },
  broker: async (config, logger) => {
    const broker = await startBroker(config, logger);
    logger.info(
      { url: broker.url, address: broker.address, brokerId: broker.brokerId },
      'broker listening',
    );
    return broker;
  },
};

export async function runRole(
  role: Role,
  name = role === 'all-in-one' ? 'wharf' : `wharf-${role}`,
): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(2);
  }
  const logger = createNodeLogger(config);
  try {
    const running = await STARTERS[role](config, logger);
    stopOnSignals(running, logger, { stdin: config.stopOnStdinClose });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof StartupError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(1);
    }
    logger.fatal({ err }, 'start failed');
    process.exit(1);
  }
}
