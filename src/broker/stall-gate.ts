// The stall gate of a cluster broker. While a broker's process stands still (SIGSTOP, a frozen
// volume under a synchronous write, a long GC pause), gateways whose publish calls to it missed
// their deadline leave publish fences for it and store the messages on another broker. When it
// runs again, the calls and receives queued on its sockets are read at once, before the fence
// announcements or its next look at Redis: a queued publish would be stored and a queued receive
// could hand a consumer that copy (or the copy of a call stored as the stall began) in the
// milliseconds before the fence withdraws it — one message delivered twice. So the broker watches
// its own event loop: after a gap longer than `gapMs`, the next publish or receive first waits
// for a round of fences (at most `waitMs`, so a Redis that does not answer holds nothing up for
// long), and a publish whose call was fenced meanwhile is refused rather than stored.
import type { BrokerLogger } from './broker-logger.js';

/** An event-loop gap this long means the process stood still (a busy loop does not stop its
 *  timers for this long). Well under a gateway's broker-call deadline (5 s), past which it fences. */
export const STALL_GAP_MS = 1000;
/** How long a publish or receive after a stall waits for the fences to be applied. */
export const STALL_FENCES_WAIT_MS = 1000;
/** How soon a fence round that failed after a stall is tried again. */
const RETRY_MS = 50;
/** How often the loop's progress is noted. */
const TICK_MS = 200;

export class StallGate {
  private seenAtMs = performance.now();
  private round: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    /** Applies the fences waiting now (a round of the broker's fence source); false when they
     *  could not be read or applied (a Redis connection reset on waking, say). */
    private readonly applyFences: () => Promise<boolean>,
    private readonly logger: BrokerLogger,
    private readonly gapMs = STALL_GAP_MS,
    private readonly waitMs = STALL_FENCES_WAIT_MS,
  ) {
    this.timer = setInterval(() => this.tick(), Math.min(TICK_MS, gapMs / 2));
    this.timer.unref();
  }

  /** Undefined when the loop has not stood still since the last look (nearly always); else a
   *  promise that resolves once the fences left meanwhile are applied (or after `waitMs`). */
  pass(): Promise<void> | undefined {
    if (this.round !== null) return this.round;
    if (performance.now() - this.seenAtMs <= this.gapMs) return undefined;
    return this.open();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    if (this.round === null && performance.now() - this.seenAtMs > this.gapMs) void this.open();
    else if (this.round === null) this.seenAtMs = performance.now();
  }

  private open(): Promise<void> {
    const now = performance.now();
    const gapMs = Math.round(now - this.seenAtMs);
    this.seenAtMs = now;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.waitMs);
    });
    // a round that fails is tried again until one applies or the wait is over: the first after
    // a stall often meets its Redis connection reset (commands timed out while the process
    // stood still), and serving then would hand out copies fenced meanwhile
    const deadline = now + this.waitMs;
    const applied = (async (): Promise<'applied' | 'failed'> => {
      for (;;) {
        const ok = await this.applyFences().catch((error: unknown) => {
          this.logger.warn({ err: error }, 'publish fences not applied after a stall');
          return false;
        });
        if (ok) return 'applied';
        const left = deadline - performance.now();
        if (left <= 0) return 'failed';
        await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MS, left)));
      }
    })();
    this.round = Promise.race([applied, waited]).then((outcome) => {
      clearTimeout(timer);
      this.seenAtMs = performance.now();
      this.round = null;
      this.logger.warn(
        { gapMs, fences: outcome },
        outcome === 'applied'
          ? 'the broker stood still: publish fences left meanwhile applied before serving on'
          : 'the broker stood still: serving on without the publish fences left meanwhile (Redis?)',
      );
    });
    return this.round;
  }
}
