// `npm start`: the all-in-one node — gateway and one broker in one process, joined by the
// in-process transport. Prints where it listens, the operator token and a first command.
import { banner } from './banner.js';
import { ConfigError, loadConfig } from './config.js';
import { StartupError, createNodeLogger, startNode, stopOnSignals } from './node.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`wharf: ${err.message}\n`);
    process.exit(2);
  }
  const logger = createNodeLogger(config);
  try {
    const node = await startNode(config, logger);
    stopOnSignals(node, logger);
    process.stdout.write(`${banner(node)}\n`);
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`wharf: ${err.message}\n`);
      process.exit(1);
    }
    logger.fatal({ err }, 'start failed');
    process.exit(1);
  }
}

await main();
