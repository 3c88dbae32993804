// Cluster shapes benchmark (issue #11): HTTP publish throughput of the all-in-one node against a
// cluster of 1 gateway + 1 broker and of 2 gateways + 2 brokers, each a set of real processes on
// this machine (private Redis, `wharf <role>` from dist/). The load process publishes batches of
// 32 × 1 KiB through every gateway with N requests in flight for S seconds. Reported: msg/s, the
// CPU the server processes used (% of one core, summed), msg/s per core of server CPU, and the
// ratio to all-in-one. The load generator shares the cores: figures are relative, and noisy on a
// shared machine.
//   node dist/scripts/bench/cluster-shapes.js [--seconds 5 --inflight 16 --flush sync]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { LocalCluster, type WharfProcess } from '../lib/local-cluster.js';
import { SignedClient } from './e2e/signed-client.js';
import { CpuSampler } from './lib/cpu-sampler.js';
import { formatCount, formatFixed, formatRatio, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}
const SECONDS = Number(flag('seconds', '5'));
const IN_FLIGHT = Number(flag('inflight', '16'));
const FLUSH = flag('flush', 'sync');
const BATCH = 32;
const BODY = 'x'.repeat(1024);

const SHAPES = [
  { name: 'all-in-one', gateways: 0, brokers: 0 },
  { name: '1 gateway + 1 broker', gateways: 1, brokers: 1 },
  { name: '2 gateways + 2 brokers', gateways: 2, brokers: 2 },
] as const;

interface Result {
  shape: string;
  messages: number;
  seconds: number;
  serverCpuPct: number;
}

async function provision(url: string, adminToken: string) {
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    }).then(async (r) => {
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, string>;
    });
  const { tenantId } = await admin('POST', '/admin/v1/tenants', {
    name: `bench-${randomBytes(4).toString('hex')}`,
    quotas: { publishPerSecond: 10_000_000, consumePerSecond: 10_000_000 },
  });
  const key = await admin('POST', `/admin/v1/tenants/${tenantId}/access-keys`, {});
  return { accessKeyId: key.accessKeyId, accessKeySecret: key.accessKeySecret };
}

async function runShape(shape: (typeof SHAPES)[number]): Promise<Result> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wharf-bench-cluster-'));
  const cluster = new LocalCluster({
    command: [
      process.execPath,
      ...NODE_FLAGS,
      fileURLToPath(new URL('../../src/cli/wharf.js', import.meta.url)),
    ],
    dataDir,
    masterKey: randomBytes(32).toString('base64url'),
    adminToken: randomBytes(24).toString('base64url'),
    env: { WHARF_MIN_FREE_DISK_MB: '0', WHARF_LOG_LEVEL: 'warn', WHARF_FLUSH: FLUSH },
    logFiles: true,
  });
  try {
    await cluster.startRedis();
    let gateways: WharfProcess[];
    if (shape.gateways === 0) {
      gateways = [await cluster.startAllInOne()];
    } else {
      await Promise.all(
        Array.from({ length: shape.brokers }, (_, i) => cluster.startBroker(i + 1)),
      );
      for (let i = 0; i < shape.gateways; i++) await cluster.startGateway();
      gateways = cluster.gateways;
    }
    const key = await provision(gateways[0].url, cluster.options.adminToken);
    const clients = gateways.map(
      (g) => new SignedClient({ url: g.url, ...key, region: 'local', maxSockets: IN_FLIGHT }),
    );
    const { instanceId } = (await clients[0].ok('POST', '/v1/instances', { name: 'bench' })) as {
      instanceId: string;
    };
    const path = `/v1/instances/${instanceId}/topics/load`;
    await clients[0].ok('PUT', path, { messageType: 'NORMAL', queueCount: 8 });
    const batch = { messages: Array.from({ length: BATCH }, () => ({ body: BODY })) };
    // warm up every gateway (metadata caches, connections)
    for (const client of clients) await client.ok('POST', `${path}/messages`, batch, 'publish');
    const servers = [...cluster.brokers.values(), ...gateways]
      .map((p) => (p.child.pid === undefined ? null : CpuSampler.start(p.child.pid)))
      .filter((s) => s !== null);
    let messages = 0;
    const started = performance.now();
    const deadline = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, i) => {
        const client = clients[i % clients.length];
        while (performance.now() < deadline) {
          await client.ok('POST', `${path}/messages`, batch, 'publish');
          messages += BATCH;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const serverCpuPct = servers.reduce((sum, s) => sum + (s.stop() ?? 0), 0);
    for (const client of clients) client.close();
    return { shape: shape.name, messages, seconds, serverCpuPct };
  } finally {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(
    `cluster shapes: HTTP publish, ${BATCH} × 1 KiB a request, ${IN_FLIGHT} requests in ` +
      `flight, ${SECONDS} s per shape, flush ${FLUSH}; server processes and the load generator ` +
      'share this machine’s cores\n',
  );
  const results: Result[] = [];
  for (const shape of SHAPES) {
    results.push(await runShape(shape));
    process.stdout.write(`  ${shape.name}: done\n`);
  }
  const base = results[0].messages / results[0].seconds;
  process.stdout.write(
    `${formatTable(
      [
        { header: 'shape' },
        { header: 'msg/s', align: 'right' },
        { header: 'server CPU %', align: 'right' },
        { header: 'msg/s per server core', align: 'right' },
        { header: 'vs all-in-one', align: 'right' },
      ],
      results.map((r) => {
        const rate = r.messages / r.seconds;
        return [
          r.shape,
          formatCount(rate),
          formatFixed(r.serverCpuPct, 0),
          formatCount(rate / (r.serverCpuPct / 100)),
          formatRatio(rate, base),
        ];
      }),
    )}\n`,
  );
}

await main();
