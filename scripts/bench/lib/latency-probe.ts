// The receive side of a latency run: reads the scheduled time stamped into each body, records
// receive time minus scheduled time, and tells the driver when every expected message is in.
// One probe per run; drivers pair it with runOnSchedule on the send side.
import { type LatencySummary, LatencyRecorder } from './percentiles.js';
import { nowMs, readScheduledAt, STAMP_BYTES, stampScheduledAt } from './pacer.js';

export class LatencyProbe {
  private readonly recorder = new LatencyRecorder();
  private expected = Number.POSITIVE_INFINITY;
  private resolveDone: (() => void) | null = null;
  private readonly done: Promise<void>;

  constructor() {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** A fresh body of `bodyBytes` (at least the stamp) carrying `scheduledMs`. */
  static body(bodyBytes: number, scheduledMs: number): Buffer {
    const body = Buffer.alloc(Math.max(bodyBytes, STAMP_BYTES), 0x61);
    stampScheduledAt(body, scheduledMs);
    return body;
  }

  /** Records one received body; the receive time is now. */
  receive(body: Uint8Array): void {
    this.recorder.record(nowMs() - readScheduledAt(body));
    this.checkDone();
  }

  get received(): number {
    return this.recorder.count;
  }

  /** Sets how many messages the run sent (known once pacing ends). */
  expect(count: number): void {
    this.expected = count;
    this.checkDone();
  }

  /** Resolves true once every expected message arrived, false after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.done.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  summarize(): LatencySummary {
    return this.recorder.summarize();
  }

  private checkDone(): void {
    if (this.recorder.count >= this.expected && this.resolveDone !== null) {
      this.resolveDone();
      this.resolveDone = null;
    }
  }
}
