// Events per second over a sliding window of one-second buckets (publish, deliver, ack rates).

export class RateCounter {
  private readonly buckets: Float64Array;
  private lastSecond = 0;
  total = 0;

  constructor(private readonly windowSeconds = 10) {
    this.buckets = new Float64Array(windowSeconds + 1);
  }

  add(count: number, nowMs = Date.now()): void {
    this.roll(nowMs);
    this.buckets[this.lastSecond % this.buckets.length] =
      this.buckets[this.lastSecond % this.buckets.length] + count;
    this.total += count;
  }

  /** Mean rate over the last `windowSeconds` whole seconds. */
  perSecond(nowMs = Date.now()): number {
    this.roll(nowMs);
    let sum = 0;
    for (let i = 1; i <= this.windowSeconds; i++) {
      sum += this.buckets[(this.lastSecond - i + this.buckets.length * 2) % this.buckets.length];
    }
    return sum / this.windowSeconds;
  }

  private roll(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second <= this.lastSecond) return;
    const steps = Math.min(second - this.lastSecond, this.buckets.length);
    for (let i = 1; i <= steps; i++) this.buckets[(this.lastSecond + i) % this.buckets.length] = 0;
    this.lastSecond = second;
  }
}
