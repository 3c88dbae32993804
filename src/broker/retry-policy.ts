// How long an unacked message waits, after its invisibility ends, before it is delivered again.
// Default: RocketMQ's message delay levels 1s 5s 10s 30s 1m 2m … 10m 20m 30m 1h 2h (the last level
// repeats). A group may give its own list or an exponential rule (API.md, groups).
import type { RetryPolicy } from '../model/index.js';

export const DEFAULT_BACKOFF_SECONDS: readonly number[] = [
  1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/** Back-off after delivery `attempt` (1-based) went unacked. */
export function retryBackoffMs(policy: RetryPolicy | undefined, attempt: number): number {
  const index = Math.max(0, attempt - 1);
  if (policy === undefined || 'backoffSeconds' in policy) {
    const levels = policy?.backoffSeconds ?? DEFAULT_BACKOFF_SECONDS;
    if (levels.length === 0) return 0;
    return levels[Math.min(index, levels.length - 1)] * 1000;
  }
  const { initialSeconds, multiplier, maxSeconds } = policy.exponential;
  const seconds = Math.min(maxSeconds, initialSeconds * Math.pow(multiplier, index));
  return Math.round(seconds * 1000);
}
