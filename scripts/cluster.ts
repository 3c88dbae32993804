// `npm run cluster`: a local cluster in one command — a private Redis, 3 brokers and 2 gateways,
// each a real process. WHARF_PORT is the first gateway's port (the second takes the next),
// WHARF_DATA_DIR holds one subdirectory per broker (b1, b2, b3), the Redis files, the generated
// master key and admin token, and the processes' logs; WHARF_ADMIN_TOKEN is every gateway's
// operator token. Prints one line per process and the gateways' URLs; Ctrl-C or SIGTERM stops
// everything (gateways drain first, then brokers, then Redis). If the launcher dies without
// stopping them (SIGKILL), they stop on their own: each Wharf process once its stdin, a pipe
// from the launcher, closes (WHARF_STOP_ON_STDIN_CLOSE), Redis once they are all gone.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIN_ADMIN_TOKEN_CHARS, MIN_MASTER_KEY_CHARS } from '../src/cli/config.js';
import { loadOrCreateSecret } from '../src/cli/node.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { LocalCluster } from './lib/local-cluster.js';

const BROKERS = 3;
const GATEWAYS = 2;

async function main(): Promise<void> {
  const dataDir = resolve(process.env.WHARF_DATA_DIR ?? './data/cluster');
  mkdirSync(dataDir, { recursive: true });
  const port = Number(process.env.WHARF_PORT ?? '8080');
  if (!Number.isInteger(port) || port < 1 || port > 65534) {
    process.stderr.write(`cluster: WHARF_PORT=${process.env.WHARF_PORT}: must be 1..65534\n`);
    process.exit(2);
  }
  const adminToken =
    process.env.WHARF_ADMIN_TOKEN ??
    loadOrCreateSecret(join(dataDir, 'admin.token'), MIN_ADMIN_TOKEN_CHARS);
  const masterKey =
    process.env.WHARF_MASTER_KEY ??
    loadOrCreateSecret(join(dataDir, 'master.key'), MIN_MASTER_KEY_CHARS);
  const wharf = fileURLToPath(new URL('../src/cli/wharf.js', import.meta.url));
  const cluster = new LocalCluster({
    command: [process.execPath, ...NODE_FLAGS, wharf],
    dataDir,
    masterKey,
    adminToken,
    gatewayPort: port,
    logFiles: true,
    ownProcessGroups: true,
    stopWithLauncher: true,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping gateways, brokers, then Redis…\n`);
    cluster.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`cluster: stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // the terminal closed: its processes are in groups of their own and would not hear of it.
  // Writes to the closed terminal fail (EIO): not a reason to skip the ordered stop
  process.on('SIGHUP', () => {
    process.stdout.on('error', () => undefined);
    process.stderr.on('error', () => undefined);
    stop('SIGHUP');
  });
  // whatever way the launcher exits, what it started is told to stop (each drains on its own)
  process.once('exit', () => {
    const children = [...cluster.gateways, ...cluster.brokers.values()].map((p) => p.child);
    if (cluster.redis !== undefined) children.push(cluster.redis.process);
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
  });

  try {
    const redis = await cluster.startRedis();
    process.stdout.write(`redis     pid ${redis.process.pid} ${redis.url}\n`);
    for (let id = 1; id <= BROKERS; id++) {
      const b = await cluster.startBroker(id);
      process.stdout.write(
        `broker b${id} pid ${b.child.pid} rpc 127.0.0.1:${b.rpcPort} probes ${b.url} ` +
          `data ${join(dataDir, b.name)}\n`,
      );
    }
    for (let n = 1; n <= GATEWAYS; n++) {
      const g = await cluster.startGateway();
      process.stdout.write(`gateway ${g.name} pid ${g.child.pid} ${g.url}\n`);
    }
  } catch (err) {
    process.stderr.write(
      `cluster: start failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    await cluster.stop().catch(() => undefined);
    process.exit(1);
  }
  for (const process of [...cluster.brokers.values(), ...cluster.gateways]) {
    process.child.once('exit', (code, signal) => {
      if (!stopping) {
        globalThis.process.stderr.write(
          `${process.name} exited (${code ?? signal}); see ${join(dataDir, 'logs')}\n`,
        );
      }
    });
  }
  process.stdout.write(
    `\nWharf cluster: ${GATEWAYS} gateways, ${BROKERS} brokers\n` +
      cluster.gateways.map((g) => `  ${g.url}\n`).join('') +
      `admin token: ${adminToken}\nlogs: ${join(dataDir, 'logs')}\nCtrl-C stops everything.\n`,
  );
}

await main();
