// The send side of every driver's latency phase: sends on the fixed schedule through a window,
// then waits for the window to empty and the probe to see every message, stops the consumers and
// summarizes. A driver supplies how to send one stamped body and how to stop its consumers.
import type { LatencyProbe } from './latency-probe.js';
import { runOnSchedule } from './pacer.js';
import type { LatencyOptions, LatencyResult } from './peer-driver.js';
import type { SendWindow } from './send-window.js';

export interface LatencyRun {
  options: LatencyOptions;
  window: SendWindow;
  probe: LatencyProbe;
  /** Sends one message scheduled at `scheduledMs` (the window slot is already taken). */
  send(scheduledMs: number): void;
  /** Stops the consumers once every message arrived (or the drain timed out); throws their failure. */
  stop(): Promise<void>;
}

export async function runLatency(run: LatencyRun): Promise<LatencyResult> {
  const { options, window, probe } = run;
  let sent = 0;
  const send = (scheduledMs: number): void => {
    run.send(scheduledMs);
    sent++;
  };
  const paced = await runOnSchedule({
    ratePerSec: options.ratePerSec,
    durationMs: options.durationMs,
    send: (_index, scheduledMs) => {
      const wait = window.acquire();
      if (wait === undefined) return send(scheduledMs);
      return wait.then(() => send(scheduledMs));
    },
  });
  probe.expect(sent);
  await window.idle();
  await probe.drained(options.drainTimeoutMs ?? 10_000);
  await run.stop();
  return {
    ...probe.summarize(),
    ratePerSec: options.ratePerSec,
    sent,
    sendLagP50Ms: paced.sendLag.p50Ms,
    sendLagP99Ms: paced.sendLag.p99Ms,
  };
}
