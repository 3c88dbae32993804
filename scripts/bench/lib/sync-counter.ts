// Counts a server's fsync and fdatasync calls over a benchmark phase, so a table can give
// messages per sync: this disk's host caches writes (an fdatasync costs ≈ 0.1 ms), real disks
// cost 10–100× more, and messages per sync is the figure that carries over. Uses `perf stat` on
// the syscall tracepoints (no ptrace, so the server is not slowed); null where perf is missing or
// not permitted.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

const EVENTS = ['syscalls:sys_enter_fdatasync', 'syscalls:sys_enter_fsync'];
/** perf needs a moment to attach to every thread before it counts. */
const ATTACH_MS = 300;

/**
 * Sum of the sync counts in `perf stat -x,` output; null if any event was not counted
 * (unsupported, not permitted) or none is present.
 */
export function parsePerfSyncCounts(csv: string): number | null {
  let total = 0;
  let seen = 0;
  for (const line of csv.split('\n')) {
    const fields = line.split(',');
    if (!EVENTS.includes(fields[2] ?? '')) continue;
    const count = Number(fields[0]);
    if (!Number.isFinite(count)) return null;
    total += count;
    seen++;
  }
  return seen === 0 ? null : total;
}

export class SyncCounter {
  private stderr = '';

  private constructor(private readonly perf: ChildProcess) {
    perf.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  /** Starts counting the syncs of `pid`; null if perf cannot attach. */
  static async start(pid: number, perfBinary = 'perf'): Promise<SyncCounter | null> {
    const perf = spawn(perfBinary, ['stat', '-x', ',', '-e', EVENTS.join(','), '-p', String(pid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const failed = new Promise<boolean>((resolve) => {
      perf.once('error', () => resolve(true));
      perf.once('exit', () => resolve(true));
      setTimeout(() => resolve(false), ATTACH_MS);
    });
    const counter = new SyncCounter(perf);
    return (await failed) ? null : counter;
  }

  /** Stops counting: the syncs since start, or null if perf failed. */
  async stop(): Promise<number | null> {
    if (this.perf.exitCode !== null || this.perf.signalCode !== null) return null;
    const exited = once(this.perf, 'exit');
    this.perf.kill('SIGINT'); // perf prints its counts on SIGINT
    await exited;
    return parsePerfSyncCounts(this.stderr);
  }
}
