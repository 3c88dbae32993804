// `npm run bench:e2e [-- --messages N --rate R --duration-s S --runs K --peers a,b --json F]`:
// Wharf end to end through its public API — the all-in-one node started as its own process
// (sync flush), driven by SigV4-signed HTTP from a separate load process — beside the peers a
// user would pick instead (RabbitMQ quorum and classic, NATS JetStream, Redis Streams), the same
// workload in the same run, one table with ratios against the RabbitMQ quorum queue. The
// `wharf-mqhttp` row runs the same workload on the same node through the Aliyun MQ HTTP routes;
// `wharf-trace-off` runs it on a second node started with WHARF_TRACE=false (what the trace
// costs), `wharf-16b` on the first node with 16-byte bodies (what a call costs beside its bytes),
// `wharf-stream` on the first node consuming through streaming receives (acks in batches of 100),
// `wharf-split` on a gateway process and a broker process (the cluster shape on both cores; its
// CPU columns are the gateway process's only). `http-floor` runs the same driver against a bare
// node:http server of the same routes over in-memory lists (lib/http-floor-server.ts: no auth, no
// store, not durable): what the load process, HTTP/1.1 and the loopback cost by themselves here.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { LocalCluster } from '../lib/local-cluster.js';
import { siblingModule } from './lib/child-runner.js';
import { startHttpFloor } from './lib/http-floor.js';
import { provisionTenant, startWharf, type RunningWharf } from './lib/wharf-node.js';
import { runComparison, type ComparisonEntry } from './lib/comparison.js';
import { parsePlan, planOptions, positive } from './lib/plan-args.js';
import { PEERS } from './peers/catalog.js';

const { values } = parseArgs({
  options: {
    ...planOptions(
      [
        'wharf',
        'wharf-trace-off',
        'wharf-16b',
        'wharf-stream',
        'wharf-split',
        'wharf-mqhttp',
        'http-floor',
        'rabbitmq-quorum',
        'rabbitmq-classic',
        'jetstream',
        'redis-streams',
      ].join(','),
    ),
    'wharf-window': { type: 'string', default: '2048' },
    'wharf-consumers': { type: 'string', default: '16' },
    /** Publishes in flight on the MQ HTTP row (one message each). */
    'wharf-mq-window': { type: 'string', default: '256' },
    /** Extra node flags for the Wharf process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
    'wharf-node-args': { type: 'string', default: '' },
  },
  strict: true,
});
const { plan, runs, warmupMessages, quietWaitMs, quietPct, rows: wanted } = parsePlan(values);

/** The flags `npm start` runs the node with, then --wharf-node-args. */
function wharfNodeArgs(): string[] {
  return [...NODE_FLAGS, ...values['wharf-node-args'].split(' ').filter((arg) => arg !== '')];
}

/** The Wharf node's config for a driver: where it is, its tenant and the driver's own knobs. */
async function provision(wharf: RunningWharf): Promise<Record<string, unknown>> {
  return {
    url: wharf.url,
    ...(await provisionTenant(wharf)),
    topic: 'bench',
    window: positive('wharf-window', values['wharf-window']),
    consumers: positive('wharf-consumers', values['wharf-consumers']),
  };
}

const wharf =
  wanted.has('wharf') ||
  wanted.has('wharf-16b') ||
  wanted.has('wharf-stream') ||
  wanted.has('wharf-mqhttp')
    ? await startWharf(wharfNodeArgs())
    : null;
/** One gateway and one broker process on a private Redis, as RunningWharf (the gateway's pid). */
async function startSplit(): Promise<RunningWharf> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wharf-bench-split-'));
  const cluster = new LocalCluster({
    command: [process.execPath, ...wharfNodeArgs(), 'dist/src/cli/wharf.js'],
    dataDir,
    masterKey: randomBytes(32).toString('base64url'),
    adminToken: randomBytes(24).toString('base64url'),
    env: { WHARF_LOG_LEVEL: 'warn' },
    logFiles: true,
  });
  try {
    await cluster.startRedis();
    await cluster.startBroker(1);
    const gateway = await cluster.startGateway();
    return {
      url: gateway.url,
      port: Number(new URL(gateway.url).port),
      pid: gateway.child.pid as number,
      adminToken: cluster.options.adminToken,
      stop: async () => {
        await cluster.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

const wharfSplit = wanted.has('wharf-split') ? await startSplit() : null;

const floor = wanted.has('http-floor') ? await startHttpFloor() : null;
const wharfTraceOff = wanted.has('wharf-trace-off')
  ? await startWharf(wharfNodeArgs(), { WHARF_TRACE: 'false' })
  : null;
try {
  const entries: ComparisonEntry[] = [];
  const httpRow = async (
    id: string,
    node: RunningWharf,
    note: string,
    plan?: ComparisonEntry['plan'],
    extra: Record<string, unknown> = {},
  ): Promise<ComparisonEntry> => ({
    id,
    module: siblingModule(import.meta.url, 'e2e/wharf-http'),
    factory: 'createWharfHttpDriver',
    config: { ...(await provision(node)), note, ...extra },
    server: { processName: 'node', host: '127.0.0.1', port: node.port },
    serverPid: node.pid,
    ...(plan === undefined ? {} : { plan }),
  });
  if (wharf !== null && wanted.has('wharf')) entries.push(await httpRow('wharf', wharf, ''));
  if (wharfTraceOff !== null)
    entries.push(await httpRow('wharf-trace-off', wharfTraceOff, 'trace off'));
  if (wharfSplit !== null)
    entries.push(await httpRow('wharf-split', wharfSplit, '1 gateway + 1 broker process'));
  if (wharf !== null && wanted.has('wharf-stream'))
    entries.push(await httpRow('wharf-stream', wharf, '', undefined, { streams: 4 }));
  if (wharf !== null && wanted.has('wharf-16b'))
    entries.push(await httpRow('wharf-16b', wharf, '16 B bodies', { bodyBytes: 16 }));
  if (wharf !== null && wanted.has('wharf-mqhttp')) {
    // the same node and workload through the Aliyun MQ HTTP routes (one message a publish)
    entries.push({
      id: 'wharf-mqhttp',
      module: siblingModule(import.meta.url, 'e2e/wharf-mqhttp'),
      factory: 'createWharfMqHttpDriver',
      config: {
        ...(await provision(wharf)),
        window: positive('wharf-mq-window', values['wharf-mq-window']),
      },
      server: { processName: 'node', host: '127.0.0.1', port: wharf.port },
      serverPid: wharf.pid,
    });
  }
  if (floor !== null) {
    entries.push({
      id: 'http-floor',
      module: siblingModule(import.meta.url, 'e2e/wharf-http'),
      factory: 'createWharfHttpDriver',
      config: {
        url: floor.url,
        accessKeyId: 'floor',
        accessKeySecret: 'floor',
        instanceId: 'floor',
        topic: 'bench',
        window: positive('wharf-window', values['wharf-window']),
        consumers: positive('wharf-consumers', values['wharf-consumers']),
        name: 'node:http floor',
        durable: 'no (memory)',
        note: 'the same calls, no auth, no store',
      },
      server: { processName: 'node', host: '127.0.0.1', port: floor.port },
      serverPid: floor.pid,
    });
  }
  entries.push(...PEERS.filter((peer) => wanted.has(peer.id)));
  const result = await runComparison({
    entries,
    plan,
    runs,
    warmupMessages,
    quietWaitMs,
    quietPct,
    baselineId: 'rabbitmq-quorum',
    ratioHeader: 'vs quorum',
    ratioNote:
      'Ratios against the RabbitMQ quorum queue, the like-for-like durable peer (Wharf acks a publish after fdatasync too). ' +
      'Wharf: the all-in-one node (gateway + broker + Redis for metadata) in its own process; its CPU column is that process.',
  });
  process.stdout.write(
    `\n${result.table}\n\n${result.notes.map((note) => `- ${note}`).join('\n')}\n`,
  );
  if (values.json !== undefined)
    writeFileSync(values.json, `${JSON.stringify(result.json, null, 2)}\n`);
} finally {
  await wharf?.stop();
  await wharfTraceOff?.stop();
  await wharfSplit?.stop();
  await floor?.stop();
}
