// Latency statistics for benchmarks: nearest-rank percentiles over recorded samples, p50/p99/max
// summaries and the median of repeated runs. Samples are kept whole (5k msg/s × 10 s is 50k
// doubles), so a percentile is exact, never an interpolated bucket.

/** p50/p99/max of one set of latency samples, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/**
 * Nearest-rank percentile of ascending `sorted` samples: the smallest sample with at least
 * `q`% of the samples at or below it. NaN for no samples.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile out of range: ${q}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((q / 100) * n));
  return sorted[rank - 1];
}

/** Sorts a copy of the samples and returns count, p50, p99, max and mean. */
export function summarizeLatencies(samplesMs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  let sum = 0;
  for (const sample of sorted) sum += sample;
  const count = sorted.length;
  return {
    count,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: count === 0 ? Number.NaN : sorted[count - 1],
    meanMs: count === 0 ? Number.NaN : sum / count,
  };
}

/** Median of repeated measurements (the mean of the middle two for an even count); NaN if none. */
export function median(values: readonly number[]): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  const n = finite.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/**
 * A growable buffer of latency samples, so a receive loop records without allocating per message.
 */
export class LatencyRecorder {
  private samples = new Float64Array(1024);
  private length = 0;

  record(latencyMs: number): void {
    if (this.length === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.length++] = latencyMs;
  }

  get count(): number {
    return this.length;
  }

  summarize(): LatencySummary {
    return summarizeLatencies(this.samples.subarray(0, this.length));
  }
}
