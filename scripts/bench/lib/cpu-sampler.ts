// CPU share of a process over a benchmark phase, as % of one core (200% = both cores of this
// machine): utime + stime from /proc/<pid>/stat before and after. Linux only; null elsewhere or
// when the process is gone. Also finds a server's pid by name and listening port, since several
// redis-servers may run at once (the test suite starts private ones).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Kernel clock ticks a second (USER_HZ): 100 on every mainstream Linux build. */
export const CLOCK_TICKS_PER_SEC = 100;

/** utime + stime, in clock ticks, from the text of /proc/<pid>/stat. */
export function parseStatCpuTicks(stat: string): number {
  // comm (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/<pid>/stat line');
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error('not a /proc/<pid>/stat line');
  }
  return utime + stime;
}

/** CPU ticks the process has used so far, or null if it cannot be read. */
export function readCpuTicks(pid: number): number | null {
  try {
    return parseStatCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** % of one core used: CPU seconds over wall seconds. */
export function cpuSharePct(cpuMs: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (cpuMs / elapsedMs) * 100 : Number.NaN;
}

/** Measures one process's CPU share between start and stop. */
export class CpuSampler {
  private constructor(
    readonly pid: number,
    private readonly startTicks: number,
    private readonly startMs: number,
  ) {}

  /** Starts sampling `pid`; null if its /proc entry cannot be read. */
  static start(pid: number): CpuSampler | null {
    const ticks = readCpuTicks(pid);
    return ticks === null ? null : new CpuSampler(pid, ticks, performance.now());
  }

  /** % of one core since start; null if the process went away. */
  stop(): number | null {
    const ticks = readCpuTicks(this.pid);
    if (ticks === null) return null;
    const cpuMs = ((ticks - this.startTicks) * 1000) / CLOCK_TICKS_PER_SEC;
    return cpuSharePct(cpuMs, performance.now() - this.startMs);
  }
}

/** Measures this process's own CPU share (the load generator) between start and stop. */
export class SelfCpuSampler {
  private readonly startUsage = process.cpuUsage();
  private readonly startMs = performance.now();

  stop(): number {
    const usage = process.cpuUsage(this.startUsage);
    return cpuSharePct((usage.user + usage.system) / 1000, performance.now() - this.startMs);
  }
}

/** Busy clock ticks of the whole machine (all cores) from the text of /proc/stat. */
export function parseMachineBusyTicks(procStat: string): number {
  const line = procStat.split('\n', 1)[0] ?? '';
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu') throw new Error('not a /proc/stat text');
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const ticks = fields.slice(1, 9).map(Number);
  if (ticks.length < 8 || ticks.some((tick) => !Number.isFinite(tick))) {
    throw new Error('not a /proc/stat text');
  }
  const [user, nice, system, , , irq, softirq, steal] = ticks as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return user + nice + system + irq + softirq + steal;
}

/**
 * Measures the whole machine's CPU use between start and stop, in % of one core (200% = both
 * cores busy), so a table can say how much of the machine other processes took during a phase.
 */
export class MachineCpuSampler {
  private constructor(
    private readonly startTicks: number,
    private readonly startMs: number,
  ) {}

  static start(): MachineCpuSampler | null {
    try {
      return new MachineCpuSampler(
        parseMachineBusyTicks(readFileSync('/proc/stat', 'utf8')),
        performance.now(),
      );
    } catch {
      return null;
    }
  }

  stop(): number | null {
    try {
      const ticks = parseMachineBusyTicks(readFileSync('/proc/stat', 'utf8'));
      return cpuSharePct(
        ((ticks - this.startTicks) * 1000) / CLOCK_TICKS_PER_SEC,
        performance.now() - this.startMs,
      );
    } catch {
      return null;
    }
  }
}

export interface QuietWait {
  /** Whether a sample came in under the limit before the timeout. */
  quiet: boolean;
  waitedMs: number;
  /** The machine's CPU use in the last sample, % of one core. */
  busyPct: number | null;
}

/**
 * Waits until the machine's CPU use over one `sampleMs` sample is at most `maxBusyPct` (of one
 * core), or `timeoutMs` passes: another process's benchmark on a 2-core machine halves a peer's
 * figures, and a run should not start in the middle of one.
 */
export async function waitForQuietMachine(options: {
  maxBusyPct: number;
  timeoutMs: number;
  sampleMs?: number;
}): Promise<QuietWait> {
  const sampleMs = options.sampleMs ?? 1_000;
  const startMs = performance.now();
  for (;;) {
    const sampler = MachineCpuSampler.start();
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    const busyPct = sampler === null ? null : sampler.stop();
    const waitedMs = performance.now() - startMs;
    if (busyPct === null || busyPct <= options.maxBusyPct)
      return { quiet: true, waitedMs, busyPct };
    if (waitedMs >= options.timeoutMs) return { quiet: false, waitedMs, busyPct };
  }
}

/** Socket inodes listening on `port` in the text of /proc/net/tcp or /proc/net/tcp6. */
export function listeningInodes(procNetTcp: string, port: number): Set<string> {
  const inodes = new Set<string>();
  for (const line of procNetTcp.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const state = fields[3];
    const inode = fields[9];
    if (local === undefined || state !== '0A' || inode === undefined) continue;
    if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(inode);
  }
  return inodes;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function pidsNamed(processName: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', processName], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches, or is missing
  }
}

function ownsSocket(pid: number, inodes: Set<string>): boolean {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) return true;
      } catch {
        // fd closed while we looked
      }
    }
  } catch {
    // not our process to inspect
  }
  return false;
}

/**
 * The pid of the process named `processName` (as pgrep -x matches it) listening on `port`, or
 * the only such process when sockets cannot be inspected; null if none is found.
 */
export function findServerPid(processName: string, port: number): number | null {
  const pids = pidsNamed(processName);
  if (pids.length === 0) return null;
  const inodes = listeningInodes(readOr('/proc/net/tcp') + readOr('/proc/net/tcp6'), port);
  const owner = pids.find((pid) => ownsSocket(pid, inodes));
  if (owner !== undefined) return owner;
  return pids.length === 1 ? pids[0] : null;
}
