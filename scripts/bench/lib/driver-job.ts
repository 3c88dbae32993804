// A driver run as data, so it can cross into a load process: which module and factory build the
// driver, its JSON config, the measure plan and the server pid to sample. measureInChild is the
// parent side; runDriverJob is what driver-child.ts runs in the load process.
import { pathToFileURL } from 'node:url';
import { type ChildOptions, runInChild, siblingModule } from './child-runner.js';
import { type DriverMeasurement, type MeasurePlan, measureDriver } from './measure-driver.js';
import type { PeerDriver } from './peer-driver.js';

export interface DriverJob {
  /** Absolute path or file: URL of the module exporting the factory. */
  module: string;
  /** Name of the exported PeerDriverFactory. */
  factory: string;
  config: Record<string, unknown>;
  plan: MeasurePlan;
  serverPid: number | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Narrows parsed JSON to a DriverJob, or throws naming the bad field. */
export function parseDriverJob(value: unknown): DriverJob {
  if (!isRecord(value)) throw new TypeError('driver job must be an object');
  const { module, factory, config, plan, serverPid } = value;
  if (typeof module !== 'string') throw new TypeError('driver job: module must be a string');
  if (typeof factory !== 'string') throw new TypeError('driver job: factory must be a string');
  if (!isRecord(config)) throw new TypeError('driver job: config must be an object');
  if (!isRecord(plan)) throw new TypeError('driver job: plan must be an object');
  for (const field of ['messages', 'bodyBytes', 'batch', 'ratePerSec', 'durationMs']) {
    if (typeof plan[field] !== 'number')
      throw new TypeError(`driver job: plan.${field} must be a number`);
  }
  if (serverPid !== null && typeof serverPid !== 'number') {
    throw new TypeError('driver job: serverPid must be a number or null');
  }
  return { module, factory, config, plan: plan as unknown as MeasurePlan, serverPid };
}

/** Imports the job's module and builds its driver. */
export async function loadDriver(job: DriverJob): Promise<PeerDriver> {
  const url = job.module.startsWith('file:') ? job.module : pathToFileURL(job.module).href;
  const exports: Record<string, unknown> = await import(url);
  const factory = exports[job.factory];
  if (typeof factory !== 'function') {
    throw new TypeError(`${job.module} has no driver factory named ${job.factory}`);
  }
  return (factory as (config: Record<string, unknown>) => PeerDriver)(job.config);
}

/** Runs a job in this process; a SIGTERM (the parent's timeout) still tears the driver down. */
export async function runDriverJob(job: DriverJob): Promise<DriverMeasurement> {
  const driver = await loadDriver(job);
  const onSignal = (): void => {
    driver.teardown().finally(() => process.exit(143));
  };
  process.once('SIGTERM', onSignal);
  try {
    return await measureDriver(driver, job.plan, job.serverPid);
  } finally {
    process.off('SIGTERM', onSignal);
  }
}

/** Runs a job in a fresh load process and resolves with its measurement. */
export async function measureInChild(
  job: DriverJob,
  options: ChildOptions = {},
): Promise<DriverMeasurement> {
  const entry = siblingModule(import.meta.url, 'driver-child');
  return (await runInChild(entry, [JSON.stringify(job)], options)) as DriverMeasurement;
}
