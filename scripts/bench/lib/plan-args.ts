// Command-line flags every comparison benchmark takes (bench:peers, bench:e2e) and the measure
// plan they make: message count and size, publish batch and window, latency rate and duration,
// runs, warm-up, quiet-machine wait, which rows, JSON output.
import type { MeasurePlan, Phase } from './measure-driver.js';

export function planOptions(defaultRows: string) {
  return {
    messages: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '5000' },
    'duration-s': { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    /** Messages each row publishes and drains once, unreported, before its first run (0: none). */
    'warmup-messages': { type: 'string', default: '100000' },
    'body-bytes': { type: 'string', default: '1024' },
    batch: { type: 'string', default: '32' },
    window: { type: 'string' },
    phases: { type: 'string', default: 'publish,consume,latency' },
    peers: { type: 'string', default: defaultRows },
    json: { type: 'string' },
    'quiet-wait-s': { type: 'string', default: '30' },
    'quiet-pct': { type: 'string', default: '30' },
  } as const;
}

export interface PlanValues {
  messages: string;
  rate: string;
  'duration-s': string;
  runs: string;
  'warmup-messages': string;
  'body-bytes': string;
  batch: string;
  window?: string | undefined;
  phases: string;
  peers: string;
  'quiet-wait-s': string;
  'quiet-pct': string;
}

export function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

function nonNegative(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be 0 or more`);
  return value;
}

export interface ParsedPlan {
  plan: MeasurePlan;
  runs: number;
  warmupMessages: number;
  quietWaitMs: number;
  quietPct: number;
  rows: Set<string>;
}

export function parsePlan(values: PlanValues): ParsedPlan {
  const plan: MeasurePlan = {
    messages: Math.round(positive('messages', values.messages)),
    bodyBytes: Math.round(positive('body-bytes', values['body-bytes'])),
    batch: Math.round(positive('batch', values.batch)),
    ratePerSec: positive('rate', values.rate),
    durationMs: positive('duration-s', values['duration-s']) * 1000,
    phases: values.phases.split(',').map((phase): Phase => {
      if (phase !== 'publish' && phase !== 'consume' && phase !== 'latency') {
        throw new Error(`unknown phase ${phase}`);
      }
      return phase;
    }),
  };
  if (values.window !== undefined) plan.window = Math.round(positive('window', values.window));
  return {
    plan,
    runs: Math.round(positive('runs', values.runs)),
    warmupMessages: nonNegative('warmup-messages', values['warmup-messages']),
    quietWaitMs: Number(values['quiet-wait-s']) * 1000,
    quietPct: positive('quiet-pct', values['quiet-pct']),
    rows: new Set(values.peers.split(',').map((id) => id.trim())),
  };
}
