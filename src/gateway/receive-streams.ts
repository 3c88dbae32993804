// Streaming receives open on this gateway: each holds the receipt handles it delivered and not
// yet settled, its flow-control credit (maxOutstanding minus those), so that an ack through this
// gateway frees credit at once. A handle acked elsewhere (another gateway) or never acked stops
// counting at its nextVisibleTime, when the group may deliver the message again anyway. Bounded:
// at most `maxPerTenant` streams per tenant, each holding at most its maxOutstanding handles.
import type { AckResult } from '../cluster/index.js';
import { WharfError } from '../errors.js';

/** Default of streaming receives one tenant may hold open on one gateway (429 past it). */
export const MAX_STREAMS_PER_TENANT = 100;

export class ReceiveStream {
  /** Delivered, unsettled: receipt handle → nextVisibleTime. */
  private readonly outstanding = new Map<string, number>();
  private wake: (() => void) | undefined;

  constructor(
    private readonly owner: ReceiveStreams,
    readonly tenantId: string,
    readonly maxOutstanding: number,
  ) {}

  /** Messages this stream may take now. */
  credit(now = Date.now()): number {
    if (this.outstanding.size >= this.maxOutstanding) this.expire(now);
    return this.maxOutstanding - this.outstanding.size;
  }

  delivered(messages: readonly { receiptHandle: string; nextVisibleTime: number }[]): void {
    for (const m of messages) {
      this.outstanding.set(m.receiptHandle, m.nextVisibleTime);
      this.owner.handles.set(m.receiptHandle, this);
    }
  }

  /** A delivery whose invisibility was changed (not released): it counts until its new time. */
  extend(handle: string, nextVisibleTime: number): void {
    if (!this.outstanding.has(handle)) return;
    this.outstanding.set(handle, nextVisibleTime);
    this.wake?.(); // a deadline it waits for may have moved
  }

  settle(handle: string): void {
    if (!this.outstanding.delete(handle)) return;
    this.owner.handles.delete(handle);
    this.wake?.();
  }

  /** Resolves when credit may have come back — a settle, the earliest deadline — or on `abort`,
   *  or after `maxWaitMs` at most. */
  async waitForCredit(signal: AbortSignal, maxWaitMs = 60_000): Promise<void> {
    let earliest = Infinity;
    for (const deadline of this.outstanding.values()) earliest = Math.min(earliest, deadline);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(earliest - Date.now(), maxWaitMs)));
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Ends the stream's bookkeeping (the stream closed). */
  close(): void {
    for (const handle of this.outstanding.keys()) this.owner.handles.delete(handle);
    this.outstanding.clear();
    this.owner.closed(this);
  }

  /** Handles past their deadline no longer count: the group may deliver them again. */
  private expire(now: number): void {
    for (const [handle, deadline] of this.outstanding) {
      if (deadline > now) continue;
      this.outstanding.delete(handle);
      this.owner.handles.delete(handle);
    }
  }
}

export class ReceiveStreams {
  /** Every outstanding handle of every open stream → its stream. */
  readonly handles = new Map<string, ReceiveStream>();
  private readonly byTenant = new Map<string, number>();

  constructor(private readonly maxPerTenant = MAX_STREAMS_PER_TENANT) {}

  /** A new stream for `tenantId`; 429 Throttled when the tenant holds too many here. */
  open(tenantId: string, maxOutstanding: number): ReceiveStream {
    const count = this.byTenant.get(tenantId) ?? 0;
    if (count >= this.maxPerTenant) {
      throw new WharfError(
        'Throttled',
        `at most ${this.maxPerTenant} streaming receives per tenant on one gateway`,
      );
    }
    this.byTenant.set(tenantId, count + 1);
    return new ReceiveStream(this, tenantId, maxOutstanding);
  }

  /** Acked or released handles: their streams get the credit back. */
  settled(answers: readonly { receiptHandle: string }[]): void {
    if (this.handles.size === 0) return;
    for (const { receiptHandle } of answers) this.handles.get(receiptHandle)?.settle(receiptHandle);
  }

  /** A visibility change through this gateway: a release (0 s) settles the delivery; any other
   *  keeps it outstanding until its new nextVisibleTime — a consumer extending what it works on
   *  holds its credit. */
  visibilityChanged(answer: { receiptHandle: string; nextVisibleTime: number }, released: boolean) {
    if (this.handles.size === 0) return;
    if (released) this.settled([answer]);
    else
      this.handles.get(answer.receiptHandle)?.extend(answer.receiptHandle, answer.nextVisibleTime);
  }

  /** An ack's results, whichever API it came through: an acked or expired delivery is no longer
   *  outstanding; a handle refused as invalid (another group's, say) says nothing about the
   *  stream's deliveries. */
  acked(results: readonly AckResult[]): void {
    if (this.handles.size === 0) return;
    this.settled(results.filter((r) => r.ok || r.code === 'ReceiptHandleExpired'));
  }

  /** Called by ReceiveStream.close. */
  closed(stream: ReceiveStream): void {
    const count = (this.byTenant.get(stream.tenantId) ?? 1) - 1;
    if (count <= 0) this.byTenant.delete(stream.tenantId);
    else this.byTenant.set(stream.tenantId, count);
  }
}
