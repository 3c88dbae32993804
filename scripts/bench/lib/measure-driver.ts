// Runs one driver through its phases (publish a backlog, drain it, paced latency) and samples the
// CPU share of the server process and of this load-generating process around each phase, so
// every row of a table is measured the same way. Teardown always runs.
import { CpuSampler, MachineCpuSampler, SelfCpuSampler } from './cpu-sampler.js';
import type { LatencyResult, PeerDriver, ThroughputResult } from './peer-driver.js';
import { SyncCounter } from './sync-counter.js';

export interface MeasurePlan {
  messages: number;
  bodyBytes: number;
  /** Publish batch (see PublishOptions.batch). */
  batch: number;
  /** Publish window; the driver's default when omitted. */
  window?: number;
  /** Receive batch; the driver's default when omitted. */
  consumeBatch?: number;
  ratePerSec: number;
  durationMs: number;
  /** Skip a phase by leaving it out; all three by default. */
  phases?: readonly Phase[];
  /** Count the server's fsync/fdatasync calls with perf (default true; null where unavailable). */
  countSyncs?: boolean;
}

export type Phase = 'publish' | 'consume' | 'latency';

/** CPU share during a phase, in % of one core; null when not measurable. */
export interface PhaseCpu {
  serverPct: number | null;
  clientPct: number;
  /** The whole machine (200% = both cores), so other processes' load shows: machine − server − client. */
  machinePct: number | null;
}

/** What is sampled around every phase. */
export interface PhaseSamples {
  cpu: PhaseCpu;
  /** fsync + fdatasync calls the server made during the phase; null when not countable. */
  serverSyncs: number | null;
}

export interface DriverMeasurement {
  name: string;
  mode: string;
  durable: string;
  publish?: ThroughputResult & PhaseSamples;
  consume?: ThroughputResult & PhaseSamples;
  latency?: LatencyResult & PhaseSamples;
}

async function sampled<T>(
  serverPid: number | null,
  countSyncs: boolean,
  run: () => Promise<T>,
): Promise<T & PhaseSamples> {
  const syncs = serverPid === null || !countSyncs ? null : await SyncCounter.start(serverPid);
  const server = serverPid === null ? null : CpuSampler.start(serverPid);
  const machine = MachineCpuSampler.start();
  const client = new SelfCpuSampler();
  const result = await run();
  const clientPct = client.stop();
  const serverPct = server === null ? null : server.stop();
  const machinePct = machine === null ? null : machine.stop();
  const serverSyncs = syncs === null ? null : await syncs.stop();
  return { ...result, cpu: { serverPct, clientPct, machinePct }, serverSyncs };
}

export async function measureDriver(
  driver: PeerDriver,
  plan: MeasurePlan,
  serverPid: number | null,
): Promise<DriverMeasurement> {
  const phases = new Set(plan.phases ?? ['publish', 'consume', 'latency']);
  const countSyncs = plan.countSyncs ?? true;
  // Labels are read after setup, so a driver can name the server version it connected to.
  const measurement: DriverMeasurement = {
    name: driver.name,
    mode: driver.mode,
    durable: driver.durable,
  };
  try {
    await driver.setup();
    Object.assign(measurement, { name: driver.name, mode: driver.mode, durable: driver.durable });
    if (phases.has('publish') || phases.has('consume')) {
      const publishOptions = {
        messages: plan.messages,
        bodyBytes: plan.bodyBytes,
        batch: plan.batch,
      };
      measurement.publish = await sampled(serverPid, countSyncs, () =>
        driver.publishThroughput(
          plan.window === undefined ? publishOptions : { ...publishOptions, window: plan.window },
        ),
      );
    }
    if (phases.has('consume')) {
      const consumeOptions = { messages: plan.messages };
      measurement.consume = await sampled(serverPid, countSyncs, () =>
        driver.consumeThroughput(
          plan.consumeBatch === undefined
            ? consumeOptions
            : { ...consumeOptions, batch: plan.consumeBatch },
        ),
      );
    }
    if (phases.has('latency')) {
      measurement.latency = await sampled(serverPid, countSyncs, () =>
        driver.latency({
          ratePerSec: plan.ratePerSec,
          durationMs: plan.durationMs,
          bodyBytes: plan.bodyBytes,
        }),
      );
    }
  } finally {
    await driver.teardown();
  }
  return measurement;
}
