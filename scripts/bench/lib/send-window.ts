// A bound on messages sent but not yet acknowledged by the server (publisher confirms, PubAcks,
// pipeline replies). acquire() is synchronous while there is room, so a hot send loop allocates no
// promise per message; the first error fails every waiter and later acquires.

export class SendWindow {
  private inFlight = 0;
  private failure: Error | null = null;
  private waiters: { need: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  private idleWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1) || !Number.isInteger(size)) throw new RangeError(`bad window size: ${size}`);
  }

  get outstanding(): number {
    return this.inFlight;
  }

  /**
   * Takes `count` slots (at most the window size): undefined if they were free, otherwise a promise
   * that resolves once they are.
   */
  acquire(count = 1): Promise<void> | undefined {
    if (this.failure !== null) return Promise.reject(this.failure);
    const need = Math.min(count, this.size);
    if (this.waiters.length === 0 && this.inFlight + need <= this.size) {
      this.inFlight += need;
      return undefined;
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ need, resolve, reject });
    });
  }

  /** Returns `count` slots (the server acknowledged that many). */
  release(count = 1): void {
    this.inFlight = Math.max(0, this.inFlight - count);
    this.wake();
  }

  /** Fails the window: waiters and later acquires reject with `error`. */
  fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    for (const waiter of this.idleWaiters.splice(0)) waiter.reject(error);
  }

  /** Resolves once nothing is outstanding (every send acknowledged). */
  idle(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.inFlight === 0 && this.waiters.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.idleWaiters.push({ resolve, reject });
    });
  }

  private wake(): void {
    while (this.waiters.length > 0) {
      const next = this.waiters[0];
      if (this.inFlight + next.need > this.size) break;
      this.waiters.shift();
      this.inFlight += next.need;
      next.resolve();
    }
    if (this.inFlight === 0 && this.waiters.length === 0) {
      for (const waiter of this.idleWaiters.splice(0)) waiter.resolve();
    }
  }
}
