// Fixed-schedule pacing for latency runs: message i is due at t0 + i/rate, whatever happened to
// the ones before it. Latency is measured from that scheduled time (stamped into the body), so a
// stall delays every message due during it and shows in the tail instead of being hidden by a
// producer that waited (coordinated omission). Clocks are epoch milliseconds with sub-ms
// resolution, so a producer and a consumer in different processes on one host agree.
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import { LatencyRecorder, type LatencySummary } from './percentiles.js';

/** Bytes at the start of a latency message body that carry its scheduled time (float64 LE). */
export const STAMP_BYTES = 8;

/** Wall-clock time in epoch milliseconds with sub-millisecond resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Schedule math only: when message i is due, and how many fit in a duration. */
export class Schedule {
  readonly intervalMs: number;

  constructor(
    readonly ratePerSec: number,
    readonly startMs: number,
  ) {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new RangeError(`rate must be a positive number of messages a second: ${ratePerSec}`);
    }
    this.intervalMs = 1000 / ratePerSec;
  }

  /** Scheduled time of message `index` (0-based). */
  at(index: number): number {
    return this.startMs + (index * 1000) / this.ratePerSec;
  }

  /** Messages scheduled in [start, start + durationMs). */
  countWithin(durationMs: number): number {
    return Math.max(0, Math.ceil((durationMs * this.ratePerSec) / 1000 - 1e-9));
  }

  /** Messages due at or before `timeMs` (the index of the first one not yet due). */
  dueBy(timeMs: number): number {
    if (timeMs < this.startMs) return 0;
    return Math.floor(((timeMs - this.startMs) * this.ratePerSec) / 1000 + 1e-9) + 1;
  }
}

/** Writes the scheduled time into the first STAMP_BYTES of `body` (at least that long). */
export function stampScheduledAt(body: Uint8Array, scheduledMs: number): void {
  if (body.byteLength < STAMP_BYTES) throw new RangeError('body too short for a latency stamp');
  new DataView(body.buffer, body.byteOffset, STAMP_BYTES).setFloat64(0, scheduledMs, true);
}

/** Reads the scheduled time a body was stamped with. */
export function readScheduledAt(body: Uint8Array): number {
  if (body.byteLength < STAMP_BYTES) throw new RangeError('body too short for a latency stamp');
  return new DataView(body.buffer, body.byteOffset, STAMP_BYTES).getFloat64(0, true);
}

export interface PacedRunOptions {
  ratePerSec: number;
  durationMs: number;
  /** Sends message `index`; a returned promise (a full window) holds back the next send. */
  send(index: number, scheduledMs: number): void | Promise<void>;
  /** Most messages sent back to back when behind schedule before yielding to I/O. */
  maxBurst?: number;
}

export interface PacedRunResult {
  sent: number;
  elapsedMs: number;
  /** How late sends started against their schedule: the pacer's own error plus back-pressure. */
  sendLag: LatencySummary;
}

const blockCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Sends `ratePerSec × durationMs` messages on a fixed schedule. Waits of 1.5 ms or more use a
 * timer (1 ms grain, woken a millisecond early); shorter ones block the thread briefly with
 * Atomics.wait (no spinning), since a timer would send most messages up to 1 ms late. After each
 * burst it yields so receives and acks are processed.
 */
export async function runOnSchedule(options: PacedRunOptions): Promise<PacedRunResult> {
  const maxBurst = options.maxBurst ?? 64;
  const schedule = new Schedule(options.ratePerSec, nowMs() + 1);
  const total = schedule.countWithin(options.durationMs);
  const sendLag = new LatencyRecorder();
  let index = 0;
  while (index < total) {
    const waitMs = schedule.at(index) - nowMs();
    if (waitMs >= 1.5) {
      await sleep(Math.floor(waitMs - 1));
      continue;
    }
    if (waitMs > 0) Atomics.wait(blockCell, 0, 0, waitMs);
    const burstEnd = Math.min(total, index + maxBurst);
    while (index < burstEnd) {
      const scheduledMs = schedule.at(index);
      const startedMs = nowMs();
      if (scheduledMs > startedMs) break;
      sendLag.record(startedMs - scheduledMs);
      const pending = options.send(index, scheduledMs);
      index++;
      if (pending !== undefined) await pending;
    }
    await yieldToIo();
  }
  return { sent: index, elapsedMs: nowMs() - schedule.startMs, sendLag: sendLag.summarize() };
}
