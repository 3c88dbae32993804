// Cluster shapes benchmark (issue #11): HTTP publish throughput of the all-in-one node against
// clusters of 1 gateway + 1 broker, 2 gateways + 1 broker and 2 gateways + 2 brokers, each a set of
// real processes on this machine (private Redis, `wharf <role>` from dist/). The load process
// publishes batches of 32 × 1 KiB through every gateway with N requests in flight for S seconds,
// after an unreported warm-up.
// Shapes run interleaved for R rounds (reversed every other round); the last rows are each
// column's median over the rounds. Reported: msg/s, the CPU the server processes used (% of one
// core, summed, and split between gateways and brokers), server CPU a message, the load
// generator's and the whole machine's CPU, and the ratio to all-in-one in the same round. The
// load generator shares the cores: figures are relative, and noisy on a shared machine.
//   node dist/scripts/bench/cluster-shapes.js [--seconds 5 --warmup-seconds 2 --inflight 16 --rounds 3]
//     [--flush sync --rate N --cpu-prof-dir DIR]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { LocalCluster, type WharfProcess } from '../lib/local-cluster.js';
import { SignedClient } from './e2e/signed-client.js';
import { CpuSampler, MachineCpuSampler, SelfCpuSampler } from './lib/cpu-sampler.js';
import { median } from './lib/percentiles.js';
import { formatCount, formatFixed, formatRatio, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}
const SECONDS = Number(flag('seconds', '5'));
const IN_FLIGHT = Number(flag('inflight', '16'));
const ROUNDS = Number(flag('rounds', '3'));
const WARMUP_SECONDS = Number(flag('warmup-seconds', '2'));
const FLUSH = flag('flush', 'sync');
// --rate N: publish N msg/s (batches on a fixed schedule) instead of as fast as possible, so every
// shape carries the same load and its CPU a message compares without the cores being oversubscribed
const RATE = Number(flag('rate', '0'));
// --cpu-prof-dir DIR: every server process writes a V8 CPU profile there when it stops
const CPU_PROF_DIR = flag('cpu-prof-dir', '');
const BATCH = 32;
const BODY = 'x'.repeat(1024);

const SHAPES = [
  { name: 'all-in-one', gateways: 0, brokers: 0 },
  { name: '1 gateway + 1 broker', gateways: 1, brokers: 1 },
  { name: '2 gateways + 1 broker', gateways: 2, brokers: 1 },
  { name: '2 gateways + 2 brokers', gateways: 2, brokers: 2 },
] as const;

interface Result {
  shape: string;
  /** 1-based; 0 for a row of medians */
  round: number;
  messages: number;
  seconds: number;
  serverCpuPct: number;
  gatewayCpuPct: number;
  brokerCpuPct: number;
  loadCpuPct: number;
  machineCpuPct: number | null;
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

async function runShape(shape: (typeof SHAPES)[number], round: number): Promise<Result> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wharf-bench-cluster-'));
  const cluster = new LocalCluster({
    command: [
      process.execPath,
      ...NODE_FLAGS,
      ...(CPU_PROF_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`]),
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
    // the load, as fast as it goes or paced at RATE msg/s; resolves with the messages published
    const publishFor = async (ms: number, rate: number): Promise<number> => {
      let messages = 0;
      let sent = 0; // batches started, for the fixed schedule of a rate
      const started = performance.now();
      const deadline = started + ms;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async (_, i) => {
          const client = clients[i % clients.length];
          while (performance.now() < deadline) {
            if (rate > 0) {
              const due = started + (sent++ * BATCH * 1000) / rate;
              if (due >= deadline) break;
              if (due > performance.now()) await sleep(due - performance.now());
            }
            await client.ok('POST', `${path}/messages`, batch, 'publish');
            messages += BATCH;
          }
        }),
      );
      return messages;
    };
    // unreported: every process's JIT, caches and connections (they are new in every round)
    await publishFor(WARMUP_SECONDS * 1000, RATE);
    const sample = (processes: WharfProcess[]) =>
      processes
        .map((p) => (p.child.pid === undefined ? null : CpuSampler.start(p.child.pid)))
        .filter((s) => s !== null);
    const brokerSamplers = sample([...cluster.brokers.values()]);
    const gatewaySamplers = sample(gateways);
    const load = new SelfCpuSampler();
    const machine = MachineCpuSampler.start();
    const started = performance.now();
    const messages = await publishFor(SECONDS * 1000, RATE);
    const seconds = (performance.now() - started) / 1000;
    const cpuOf = (samplers: CpuSampler[]) => samplers.reduce((sum, s) => sum + (s.stop() ?? 0), 0);
    const brokerCpuPct = cpuOf(brokerSamplers);
    const gatewayCpuPct = cpuOf(gatewaySamplers);
    const serverCpuPct = brokerCpuPct + gatewayCpuPct;
    const loadCpuPct = load.stop();
    const machineCpuPct = machine === null ? null : machine.stop();
    for (const client of clients) client.close();
    return {
      shape: shape.name,
      round,
      messages,
      seconds,
      serverCpuPct,
      gatewayCpuPct,
      brokerCpuPct,
      loadCpuPct,
      machineCpuPct,
    };
  } finally {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function rowOf(r: Result, base: Result | undefined): string[] {
  const rate = r.messages / r.seconds;
  const oneNode = r.brokerCpuPct === 0;
  return [
    r.round === 0 ? 'median' : String(r.round),
    r.shape,
    formatCount(rate),
    formatFixed(r.serverCpuPct, 0),
    oneNode ? '(one node)' : formatFixed(r.gatewayCpuPct, 0),
    oneNode ? '(one node)' : formatFixed(r.brokerCpuPct, 0),
    formatFixed((r.serverCpuPct * 1e4) / rate, 1),
    formatFixed(r.loadCpuPct, 0),
    r.machineCpuPct === null ? '–' : formatFixed(r.machineCpuPct, 0),
    base === undefined ? '–' : formatRatio(rate, base.messages / base.seconds),
  ];
}

/** One row per shape of each figure's median over the rounds (so its columns need not agree). */
function medianRow(shape: string, rows: Result[]): Result {
  const of = (pick: (r: Result) => number) => median(rows.map(pick));
  const machine = rows.map((r) => r.machineCpuPct).filter((v) => v !== null);
  return {
    shape,
    round: 0,
    messages: of((r) => r.messages / r.seconds),
    seconds: 1,
    serverCpuPct: of((r) => r.serverCpuPct),
    gatewayCpuPct: of((r) => r.gatewayCpuPct),
    brokerCpuPct: of((r) => r.brokerCpuPct),
    loadCpuPct: of((r) => r.loadCpuPct),
    machineCpuPct: machine.length === 0 ? null : median(machine),
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    `cluster shapes: HTTP publish, ${BATCH} × 1 KiB a request, ${IN_FLIGHT} requests in flight` +
      `${RATE > 0 ? ` at ${RATE} msg/s` : ''}, ${SECONDS} s per shape after ${WARMUP_SECONDS} s ` +
      `unreported, ${ROUNDS} rounds (shapes ` +
      `interleaved), flush ${FLUSH}; server processes and the load generator share this ` +
      'machine’s cores\n',
  );
  const results: Result[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? SHAPES : [...SHAPES].reverse();
    for (const shape of order) {
      results.push(await runShape(shape, round));
      process.stdout.write(`  round ${round}, ${shape.name}: done\n`);
    }
  }
  const medians = SHAPES.map((shape) =>
    medianRow(
      shape.name,
      results.filter((r) => r.shape === shape.name),
    ),
  );
  const baseOf = (r: Result) =>
    (r.round === 0 ? medians : results).find(
      (b) => b.round === r.round && b.shape === SHAPES[0].name,
    );
  const rows = [
    ...results.sort((a, b) => a.round - b.round || shapeIndex(a) - shapeIndex(b)),
    ...medians,
  ];
  process.stdout.write(
    `${formatTable(
      [
        { header: 'round' },
        { header: 'shape' },
        { header: 'msg/s', align: 'right' },
        { header: 'server CPU %', align: 'right' },
        { header: 'gateways CPU %', align: 'right' },
        { header: 'brokers CPU %', align: 'right' },
        { header: 'server µs/msg', align: 'right' },
        { header: 'load CPU %', align: 'right' },
        { header: 'machine CPU %', align: 'right' },
        { header: 'vs all-in-one', align: 'right' },
      ],
      rows.map((r) => rowOf(r, baseOf(r))),
    )}\n`,
  );
}

function shapeIndex(r: Result): number {
  return SHAPES.findIndex((shape) => shape.name === r.shape);
}

await main();
