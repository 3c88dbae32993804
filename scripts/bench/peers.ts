// `npm run bench:peers [-- --messages N --rate R --duration-s S --runs K --peers a,b --json F]`:
// measures the systems a user would pick instead of Wharf on this machine (RabbitMQ quorum and
// classic queues, NATS JetStream, Redis Streams), each run in a fresh load process, runs
// interleaved across peers so machine noise spreads evenly, and prints one table of medians.
// A peer that does not answer prints "unavailable" in its row; the others still run. Before each
// run it waits (up to --quiet-wait-s, 0 to skip) for the machine to be under --quiet-pct CPU.
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { findServerPid, waitForQuietMachine } from './lib/cpu-sampler.js';
import { type DriverJob, loadDriver, measureInChild } from './lib/driver-job.js';
import type { DriverMeasurement, MeasurePlan } from './lib/measure-driver.js';
import { boundBy, formatPeerTable, type PeerRow, summarizeRuns } from './lib/peer-table.js';
import { formatCount, formatMs, formatPct } from './lib/table.js';
import { probeTcp } from './lib/tcp-probe.js';
import { PEERS, type PeerEntry } from './peers/catalog.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '5000' },
    'duration-s': { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    'body-bytes': { type: 'string', default: '1024' },
    batch: { type: 'string', default: '32' },
    window: { type: 'string' },
    peers: { type: 'string', default: PEERS.map((peer) => peer.id).join(',') },
    json: { type: 'string' },
    'quiet-wait-s': { type: 'string', default: '30' },
    'quiet-pct': { type: 'string', default: '30' },
  },
  strict: true,
});

function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

const plan: MeasurePlan = {
  messages: Math.round(positive('messages', values.messages)),
  bodyBytes: Math.round(positive('body-bytes', values['body-bytes'])),
  batch: Math.round(positive('batch', values.batch)),
  ratePerSec: positive('rate', values.rate),
  durationMs: positive('duration-s', values['duration-s']) * 1000,
};
if (values.window !== undefined) plan.window = Math.round(positive('window', values.window));
const runs = Math.round(positive('runs', values.runs));
const quietWaitMs = Number(values['quiet-wait-s']) * 1000;
const quietPct = positive('quiet-pct', values['quiet-pct']);
const wanted = new Set(values.peers.split(',').map((id) => id.trim()));
const unknown = [...wanted].filter((id) => !PEERS.some((peer) => peer.id === id));
if (unknown.length > 0) {
  throw new Error(
    `unknown peer ${unknown.join(', ')}; known: ${PEERS.map((p) => p.id).join(', ')}`,
  );
}
// Generous: the slowest peer publishes ≈ 10k msg/s; a hung run must not hang the table.
const timeoutMs = 120_000 + plan.messages / 2 + plan.durationMs * 2;

interface PeerState {
  entry: PeerEntry;
  job: DriverJob;
  labels: { peer: string; mode: string; durable: string };
  unavailable: string | null;
  measurements: DriverMeasurement[];
  failures: string[];
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function prepare(entry: PeerEntry): Promise<PeerState> {
  const { host, port, processName } = entry.server;
  const job: DriverJob = {
    module: entry.module,
    factory: entry.factory,
    config: entry.config,
    plan,
    serverPid: findServerPid(processName, port),
  };
  // Constructing a driver connects nothing: it only gives the labels for the row.
  const driver = await loadDriver(job);
  const unavailable = await probeTcp(host, port);
  return {
    entry,
    job,
    labels: { peer: driver.name, mode: driver.mode, durable: driver.durable },
    unavailable: unavailable === null ? null : `unavailable (${unavailable})`,
    measurements: [],
    failures: [],
  };
}

function progress(measurement: DriverMeasurement): string {
  const { publish, consume, latency } = measurement;
  return [
    `publish ${formatCount(publish?.msgPerSec)}/s (server ${formatPct(publish?.cpu.serverPct)}, client ${formatPct(publish?.cpu.clientPct)}, ${formatCount(publish?.serverSyncs)} syncs)`,
    `consume ${formatCount(consume?.msgPerSec)}/s`,
    `p50/p99/max ${formatMs(latency?.p50Ms)}/${formatMs(latency?.p99Ms)}/${formatMs(latency?.maxMs)} ms`,
  ].join(', ');
}

const states = await Promise.all(PEERS.filter((peer) => wanted.has(peer.id)).map(prepare));
for (const state of states) {
  if (state.unavailable !== null) log(`${state.entry.id}: ${state.unavailable}`);
}
for (let run = 1; run <= runs; run++) {
  for (const state of states) {
    if (state.unavailable !== null) continue;
    if (quietWaitMs > 0) {
      const wait = await waitForQuietMachine({ maxBusyPct: quietPct, timeoutMs: quietWaitMs });
      if (!wait.quiet) {
        log(
          `  machine still busy (${formatPct(wait.busyPct)} of a core) after ${quietWaitMs / 1000} s: running anyway`,
        );
      } else if (wait.waitedMs > 1_500) {
        log(`  waited ${(wait.waitedMs / 1000).toFixed(0)} s for other processes to finish`);
      }
    }
    const startMs = performance.now();
    try {
      const measurement = await measureInChild(state.job, { timeoutMs });
      state.measurements.push(measurement);
      state.labels = {
        peer: measurement.name,
        mode: measurement.mode,
        durable: measurement.durable,
      };
      log(`run ${run}/${runs} ${state.entry.id}: ${progress(measurement)}`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      state.failures.push(message);
      log(`run ${run}/${runs} ${state.entry.id}: failed: ${message}`);
    }
    log(`  (${((performance.now() - startMs) / 1000).toFixed(1)} s)`);
  }
}

const rows: PeerRow[] = states.map((state) => {
  const row: PeerRow = {
    ...state.labels,
    summary: state.measurements.length === 0 ? null : summarizeRuns(state.measurements),
  };
  if (state.unavailable !== null) row.status = 'unavailable';
  else if (state.failures.length > 0) {
    row.status = `${state.failures.length} failed: ${state.failures[0] ?? ''}`;
  }
  return row;
});
const baseline = Math.max(
  0,
  states.findIndex((state) => state.entry.id === 'rabbitmq-quorum'),
);

const notes = [
  `${availableParallelism()} cores, Node ${process.version}; ${formatCount(plan.messages)} messages of ${plan.bodyBytes} B a run ` +
    `(publish batch ${plan.batch}), latency at ${formatCount(plan.ratePerSec)} msg/s for ${plan.durationMs / 1000} s; ` +
    `median of ${runs} run(s), max = worst run.`,
  "Publish: all acknowledged by the server (confirms, PubAcks, replies) within each driver's window. " +
    'Consume+ack: drains the backlog the publish left. Latency: scheduled send time (t0 + i/rate) to receive.',
  `Ratios against ${rows[baseline]?.peer ?? 'the first row'} ${rows[baseline]?.mode.split(',')[0] ?? ''} ` +
    '(the like-for-like durable peer; classic queues only beside it).',
  'durable?: "yes" acks after an fsync; JetStream acks before its fsync (every 2 min); this Redis has no persistence.',
  'msg/sync pub: messages published per fsync/fdatasync of the server (perf stat on the syscall tracepoints; ' +
    '— where perf is missing). A sync costs ≈ 0.1 ms on this host-cached disk and 1–10 ms on real ones: this is the figure that carries over.',
  'CPU: % of one core (this machine has 200%), publish / consume phases; "other CPU" = machine − server − client, ' +
    'the load of other processes during the run (worst phase).',
];
if (plan.window !== undefined) {
  notes.push(
    `--window ${plan.window}: every publish phase used that window, whatever the mode column says.`,
  );
}
for (const [i, row] of rows.entries()) {
  const state = states[i];
  if (state?.unavailable !== null && state?.unavailable !== undefined) {
    notes.push(`${row.peer} (${state.entry.id}): ${state.unavailable}.`);
  }
  if (row.summary === null) continue;
  if (boundBy(row.summary.publishCpu) === 'client') {
    const { clientPct, serverPct } = row.summary.publishCpu;
    notes.push(
      `${row.peer} (${states[i]?.entry.id ?? ''}): publishing is client-bound: the load process used ` +
        `${formatPct(clientPct)} of a core, the server ${formatPct(serverPct)}.`,
    );
  }
}

process.stdout.write(
  `\n${formatPeerTable(rows, { baseline, ratioHeader: 'vs quorum', ratePerSec: plan.ratePerSec })}\n\n`,
);
process.stdout.write(`${notes.map((note) => `- ${note}`).join('\n')}\n`);
if (values.json !== undefined) {
  writeFileSync(
    values.json,
    `${JSON.stringify({ plan, runs, peers: states.map(({ entry, labels, unavailable, measurements, failures }) => ({ id: entry.id, ...labels, unavailable, measurements, failures })) }, null, 2)}\n`,
  );
}
