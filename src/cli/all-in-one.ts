// `npm start`: the all-in-one node — gateway and one broker in one process, joined by the
// in-process transport. Prints where it listens, the operator token and a first command.
import { ConfigError, loadConfig } from './config.js';
import { StartupError, createNodeLogger, startNode, stopOnSignals } from './node.js';

export function banner(node: {
  url: string;
  adminToken: string;
  adminTokenSource: string;
  redisUrl: string;
  redisSource: string;
}): string {
  const token = node.adminTokenSource === 'env' ? '(from WHARF_ADMIN_TOKEN)' : node.adminToken;
  return [
    '',
    `Wharf is listening on ${node.url}`,
    `  redis:          ${node.redisUrl} (${node.redisSource})`,
    `  operator token: ${token}`,
    `  API docs:       ${node.url}/docs`,
    '',
    'Create a tenant:',
    `  curl -s -X POST ${node.url}/admin/v1/tenants \\`,
    `    -H "authorization: Bearer ${node.adminTokenSource === 'env' ? '$WHARF_ADMIN_TOKEN' : node.adminToken}" \\`,
    `    -H 'content-type: application/json' -d '{"name":"acme"}'`,
    '',
  ].join('\n');
}

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
