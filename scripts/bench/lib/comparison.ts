// Runs a set of drivers (peers, and Wharf itself in bench:e2e) the same way: each run in a fresh
// load process, runs interleaved across rows so machine noise spreads evenly, an unreported
// warm-up round per row first (JIT compilers, caches and connections warm, as a server in service
// is; a cold first run is mostly compiling), an optional wait for a quiet machine before each run, then one table of medians with ratios against a baseline row
// and the notes that say how to read it. A row whose server does not answer says "unavailable".
import { availableParallelism } from 'node:os';
import { findServerPid, waitForQuietMachine } from './cpu-sampler.js';
import { type DriverJob, loadDriver, measureInChild } from './driver-job.js';
import type { DriverMeasurement, MeasurePlan } from './measure-driver.js';
import { boundBy, formatPeerTable, type PeerRow, summarizeRuns } from './peer-table.js';
import { formatCount, formatMs, formatPct } from './table.js';
import { probeTcp } from './tcp-probe.js';

export interface ComparisonEntry {
  /** Stable id for --peers filters and JSON output. */
  id: string;
  /** Module (absolute path) exporting the factory, run inside the load process. */
  module: string;
  factory: string;
  config: Record<string, unknown>;
  server: { processName: string; host: string; port: number };
  /** The server's pid when known (otherwise found by process name and port). */
  serverPid?: number;
  /** What this row measures differently from the table's plan (e.g. a 16-byte body). */
  plan?: Partial<MeasurePlan>;
}

export interface ComparisonOptions {
  entries: readonly ComparisonEntry[];
  plan: MeasurePlan;
  runs: number;
  /** Messages each row publishes and drains once before its first run, not reported (0: none). */
  warmupMessages: number;
  quietWaitMs: number;
  quietPct: number;
  /** Id of the row the ratio columns divide by. */
  baselineId: string;
  ratioHeader: string;
  /** Said first in the notes (what the ratios mean for this table). */
  ratioNote: string;
}

export interface ComparisonResult {
  table: string;
  notes: string[];
  json: unknown;
}

interface RowState {
  entry: ComparisonEntry;
  job: DriverJob;
  labels: { peer: string; mode: string; durable: string };
  unavailable: string | null;
  measurements: DriverMeasurement[];
  failures: string[];
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function progress(measurement: DriverMeasurement): string {
  const { publish, consume, latency } = measurement;
  return [
    `publish ${formatCount(publish?.msgPerSec)}/s (server ${formatPct(publish?.cpu.serverPct)}, client ${formatPct(publish?.cpu.clientPct)}, ${formatCount(publish?.serverSyncs)} syncs)`,
    `consume ${formatCount(consume?.msgPerSec)}/s`,
    `p50/p99/max ${formatMs(latency?.p50Ms)}/${formatMs(latency?.p99Ms)}/${formatMs(latency?.maxMs)} ms`,
  ].join(', ');
}

export async function runComparison(options: ComparisonOptions): Promise<ComparisonResult> {
  const { plan, runs, quietWaitMs, quietPct } = options;
  // Generous: the slowest peer publishes ≈ 10k msg/s; a hung run must not hang the table.
  const timeoutMs = 120_000 + plan.messages / 2 + plan.durationMs * 2;

  const prepare = async (entry: ComparisonEntry): Promise<RowState> => {
    const { host, port, processName } = entry.server;
    const job: DriverJob = {
      module: entry.module,
      factory: entry.factory,
      config: entry.config,
      plan: { ...plan, ...entry.plan },
      serverPid: entry.serverPid ?? findServerPid(processName, port),
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
  };

  const states = await Promise.all(options.entries.map(prepare));
  for (const state of states) {
    if (state.unavailable !== null) log(`${state.entry.id}: ${state.unavailable}`);
  }
  if (options.warmupMessages > 0) {
    for (const state of states) {
      if (state.unavailable !== null) continue;
      const startMs = performance.now();
      const warmup: DriverJob = {
        ...state.job,
        plan: {
          ...state.job.plan,
          messages: options.warmupMessages,
          phases: ['publish', 'consume'],
          countSyncs: false,
        },
      };
      try {
        await measureInChild(warmup, { timeoutMs });
        log(`warm-up ${state.entry.id}: ${formatCount(options.warmupMessages)} messages`);
      } catch (error) {
        // a row whose warm-up fails is still measured: its runs say what is wrong
        const message = error instanceof Error ? error.message : String(error);
        log(`warm-up ${state.entry.id}: failed: ${message}`);
      }
      log(`  (${((performance.now() - startMs) / 1000).toFixed(1)} s)`);
    }
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
    states.findIndex((state) => state.entry.id === options.baselineId),
  );

  const notes = [
    `${availableParallelism()} cores, Node ${process.version}; ${formatCount(plan.messages)} messages of ${plan.bodyBytes} B a run ` +
      `(publish batch ${plan.batch}), latency at ${formatCount(plan.ratePerSec)} msg/s for ${plan.durationMs / 1000} s; ` +
      `median of ${runs} run(s), max = worst run` +
      (options.warmupMessages > 0
        ? `; each row first published and drained ${formatCount(options.warmupMessages)} messages, unreported (warm-up).`
        : '; no warm-up (first runs include JIT compilation).'),
    "Publish: all acknowledged by the server (confirms, PubAcks, replies) within each driver's window. " +
      'Consume+ack: drains the backlog the publish left. Latency: scheduled send time (t0 + i/rate) to receive.',
    options.ratioNote,
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
  return {
    table: formatPeerTable(rows, {
      baseline,
      ratioHeader: options.ratioHeader,
      ratePerSec: plan.ratePerSec,
    }),
    notes,
    json: {
      plan,
      runs,
      rows: states.map(({ entry, labels, unavailable, measurements, failures }) => ({
        id: entry.id,
        ...labels,
        unavailable,
        measurements,
        failures,
      })),
    },
  };
}
