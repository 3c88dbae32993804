// Turns repeated DriverMeasurements into one row per system and prints the comparison table:
// medians over runs (max latency: the worst run), ratios against a baseline row measured in the
// same run, CPU shares, and which side bounded publishing. Shared by bench:peers and bench:e2e.
import type { DriverMeasurement, PhaseCpu } from './measure-driver.js';
import { median } from './percentiles.js';
import {
  type Column,
  formatCount,
  formatMs,
  formatPct,
  formatRatio,
  formatTable,
} from './table.js';

export interface PhaseCpuSummary {
  serverPct: number;
  clientPct: number;
  /** CPU used by everything else on the machine (machine − server − client). */
  otherPct: number;
}

export interface RunSummary {
  runs: number;
  publishMsgPerSec: number;
  consumeMsgPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Worst over runs, not the median: one stall is what max is for. */
  maxMs: number;
  /** Latency messages lost (sent but never received) in the worst run. */
  lost: number;
  /** Server fsync/fdatasync calls per published message (0: none); NaN when not counted. */
  publishSyncsPerMsg: number;
  publishCpu: PhaseCpuSummary;
  consumeCpu: PhaseCpuSummary;
  latencyCpu: PhaseCpuSummary;
}

export interface PeerRow {
  peer: string;
  mode: string;
  durable: string;
  /** Null when no run succeeded: `status` says why ("unavailable", "failed: …"). */
  summary: RunSummary | null;
  status?: string;
}

function summarizeCpu(samples: readonly (PhaseCpu | undefined)[]): PhaseCpuSummary {
  const present = samples.filter((cpu): cpu is PhaseCpu => cpu !== undefined);
  const finite = (value: number | null): number => value ?? Number.NaN;
  return {
    serverPct: median(present.map((cpu) => finite(cpu.serverPct))),
    clientPct: median(present.map((cpu) => cpu.clientPct)),
    otherPct: median(
      present.map((cpu) =>
        Math.max(0, finite(cpu.machinePct) - finite(cpu.serverPct) - cpu.clientPct),
      ),
    ),
  };
}

/** Medians over repeated measurements of one driver (phases a run skipped are left out). */
export function summarizeRuns(runs: readonly DriverMeasurement[]): RunSummary {
  const latencies = runs.flatMap((run) => (run.latency === undefined ? [] : [run.latency]));
  return {
    runs: runs.length,
    publishMsgPerSec: median(runs.map((run) => run.publish?.msgPerSec ?? Number.NaN)),
    consumeMsgPerSec: median(runs.map((run) => run.consume?.msgPerSec ?? Number.NaN)),
    p50Ms: median(latencies.map((latency) => latency.p50Ms)),
    p99Ms: median(latencies.map((latency) => latency.p99Ms)),
    maxMs:
      latencies.length === 0 ? Number.NaN : Math.max(...latencies.map((latency) => latency.maxMs)),
    lost: Math.max(0, ...latencies.map((latency) => latency.sent - latency.count)),
    publishSyncsPerMsg: median(
      runs.map((run) =>
        run.publish === undefined || run.publish.serverSyncs === null
          ? Number.NaN
          : run.publish.serverSyncs / run.publish.messages,
      ),
    ),
    publishCpu: summarizeCpu(runs.map((run) => run.publish?.cpu)),
    consumeCpu: summarizeCpu(runs.map((run) => run.consume?.cpu)),
    latencyCpu: summarizeCpu(runs.map((run) => run.latency?.cpu)),
  };
}

/**
 * Which side limited a throughput phase: the client when its process used most of a core while
 * the server had room, the server when it did; "—" when neither was near a core (window-bound,
 * or both waiting on the disk).
 */
export function boundBy(cpu: PhaseCpuSummary): string {
  const { serverPct, clientPct } = cpu;
  if (clientPct >= 85 && !(serverPct >= clientPct)) return 'client';
  if (serverPct >= 85) return 'server';
  return '—';
}

/** Messages per server sync while publishing: "28", "no syncs", or a dash when not counted. */
export function formatMessagesPerSync(syncsPerMsg: number): string {
  if (syncsPerMsg === 0) return 'no syncs';
  return formatCount(1 / syncsPerMsg);
}

function cpuPair(a: PhaseCpuSummary, b: PhaseCpuSummary, key: keyof PhaseCpuSummary): string {
  return `${formatPct(a[key])} / ${formatPct(b[key])}`;
}

export interface PeerTableOptions {
  /** Index of the row the ratio columns divide by. */
  baseline: number;
  /** Heading of the ratio columns, e.g. "vs quorum". */
  ratioHeader: string;
  ratePerSec: number;
}

/** The comparison table: one line a row, "unavailable"/"failed" rows keep their place. */
export function formatPeerTable(rows: readonly PeerRow[], options: PeerTableOptions): string {
  const base = rows[options.baseline]?.summary ?? null;
  const rate = `${formatCount(options.ratePerSec)}/s`;
  const columns: Column[] = [
    { header: 'peer' },
    { header: 'mode' },
    { header: 'durable?' },
    { header: 'publish msg/s', align: 'right' },
    { header: options.ratioHeader, align: 'right' },
    { header: 'consume+ack msg/s', align: 'right' },
    { header: options.ratioHeader, align: 'right' },
    { header: `p50 ms @${rate}`, align: 'right' },
    { header: 'p99 ms', align: 'right' },
    { header: 'max ms', align: 'right' },
    { header: 'msg/sync pub', align: 'right' },
    { header: 'server CPU pub / con', align: 'right' },
    { header: 'client CPU pub / con', align: 'right' },
    { header: 'pub bound by' },
    { header: 'other CPU', align: 'right' },
    { header: 'runs', align: 'right' },
  ];
  const lines = rows.map((row): string[] => {
    const head = [row.peer, row.mode, row.durable];
    const s = row.summary;
    if (s === null) return [...head, row.status ?? 'unavailable'];
    const p99 =
      s.lost > 0 ? `${formatMs(s.p99Ms)} (${formatCount(s.lost)} lost)` : formatMs(s.p99Ms);
    const other = Math.max(s.publishCpu.otherPct, s.consumeCpu.otherPct, s.latencyCpu.otherPct);
    return [
      ...head,
      formatCount(s.publishMsgPerSec),
      formatRatio(s.publishMsgPerSec, base?.publishMsgPerSec),
      formatCount(s.consumeMsgPerSec),
      formatRatio(s.consumeMsgPerSec, base?.consumeMsgPerSec),
      formatMs(s.p50Ms),
      p99,
      formatMs(s.maxMs),
      formatMessagesPerSync(s.publishSyncsPerMsg),
      cpuPair(s.publishCpu, s.consumeCpu, 'serverPct'),
      cpuPair(s.publishCpu, s.consumeCpu, 'clientPct'),
      boundBy(s.publishCpu),
      Number.isFinite(other) ? `≤${formatPct(other)}` : formatPct(other),
      row.status === undefined ? String(s.runs) : `${s.runs} (${row.status})`,
    ];
  });
  return formatTable(columns, lines);
}
