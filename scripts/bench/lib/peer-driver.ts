// The contract every benchmarked system implements (RabbitMQ, JetStream, Redis Streams, and
// Wharf over HTTP), so one runner measures them the same way and one table compares them.
// Phases run in order on one driver: setup, publishThroughput (leaves a backlog of `messages`),
// consumeThroughput (drains exactly that backlog), latency (starts empty), teardown (always).
import type { LatencySummary } from './percentiles.js';

export interface PublishOptions {
  /** Messages to publish; all must be acknowledged by the server before the call resolves. */
  messages: number;
  bodyBytes: number;
  /** Messages per request where the protocol batches (an HTTP call, a Redis pipeline). */
  batch: number;
  /** Messages awaiting the server's acknowledgement at most; the driver's best when omitted. */
  window?: number;
}

export interface ConsumeOptions {
  /** Messages to receive and acknowledge: the backlog publishThroughput left. */
  messages: number;
  /** Messages per receive (prefetch, fetch size, COUNT); the driver's default when omitted. */
  batch?: number;
}

export interface LatencyOptions {
  /** Messages a second, sent on a fixed schedule (see pacer.ts). */
  ratePerSec: number;
  durationMs: number;
  bodyBytes: number;
  /** How long to wait for the last messages after the schedule ends. Default 10 s. */
  drainTimeoutMs?: number;
}

export interface ThroughputResult {
  messages: number;
  elapsedMs: number;
  msgPerSec: number;
  /** Window or batch actually used, for the table's mode column. */
  window?: number;
}

export interface LatencyResult extends LatencySummary {
  ratePerSec: number;
  sent: number;
  /** Lateness of sends against the schedule: pacer error plus back-pressure (a full window). */
  sendLagP50Ms: number;
  sendLagP99Ms: number;
}

export interface PeerDriver {
  /** The system and version, e.g. "RabbitMQ 3.10". */
  readonly name: string;
  /** What is measured, e.g. "quorum queue, confirms window 256, prefetch 256". */
  readonly mode: string;
  /** Whether an acknowledged publish survives a power loss, short, e.g. "no (no persistence)". */
  readonly durable: string;
  /** Creates this run's uniquely named queue/stream and connections. */
  setup(): Promise<void>;
  publishThroughput(options: PublishOptions): Promise<ThroughputResult>;
  consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult>;
  latency(options: LatencyOptions): Promise<LatencyResult>;
  /** Deletes what setup created and closes connections; safe after a failed setup. */
  teardown(): Promise<void>;
}

/**
 * How a driver module exposes itself to the child-process runner: a named export taking a
 * JSON-serialisable config (each factory narrows it).
 */
export type PeerDriverFactory = (config: Record<string, unknown>) => PeerDriver;

/** Builds a ThroughputResult from a count and elapsed milliseconds. */
export function throughput(messages: number, elapsedMs: number, window?: number): ThroughputResult {
  const result: ThroughputResult = {
    messages,
    elapsedMs,
    msgPerSec: elapsedMs > 0 ? (messages * 1000) / elapsedMs : Number.NaN,
  };
  if (window !== undefined) result.window = window;
  return result;
}

/** A numeric config field, or `fallback` when absent; throws when present but not a number. */
export function configNumber(
  config: Record<string, unknown>,
  key: string,
  fallback: number,
): number {
  const value = config[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new TypeError(`config.${key} must be a number`);
  return value;
}

/** A string config field, or `fallback` when absent; throws when present but not a string. */
export function configString<T extends string>(
  config: Record<string, unknown>,
  key: string,
  fallback: T,
  allowed?: readonly T[],
): T {
  const value = config[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || (allowed !== undefined && !allowed.includes(value as T))) {
    throw new TypeError(
      `config.${key} must be ${allowed === undefined ? 'a string' : allowed.join(' or ')}`,
    );
  }
  return value as T;
}

/** A name unique to this run for a queue or stream: `prefix` + pid + random. */
export function uniqueName(prefix: string, separator = '-'): string {
  const random = Math.random().toString(36).slice(2, 8);
  return [prefix, process.pid.toString(36), Date.now().toString(36), random].join(separator);
}

/**
 * Calls `onStall` once if `progress()` has not changed for `stallMs` (a consumer waiting for
 * messages that were never stored would otherwise wait until the load process is killed).
 * Returns a function that stops watching.
 */
export function watchProgress(
  progress: () => number,
  stallMs: number,
  onStall: () => void,
): () => void {
  let last = progress();
  let lastChangeMs = performance.now();
  const timer = setInterval(
    () => {
      const now = progress();
      if (now !== last) {
        last = now;
        lastChangeMs = performance.now();
      } else if (performance.now() - lastChangeMs >= stallMs) {
        clearInterval(timer);
        onStall();
      }
    },
    Math.min(1_000, stallMs),
  );
  return () => clearInterval(timer);
}
