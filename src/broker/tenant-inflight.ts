// The in-flight bound of a tenant on this broker: messages received and not yet acked or moved to
// a dead-letter queue, over every group, topic and broadcasting consumer id of the tenant. The
// per-queue cap bounds one subscription; without this, a tenant receiving and never acking over
// many groups or consumer ids grows the broker's memory (about 300 bytes a message in flight) and
// its snapshot without limit.
//
// Counted, not tracked: one pass over the ledger's cursors counts each tenant's in-flight
// messages. Between passes the count only grows: a receive reserves room before it reads (so
// receives of the tenant's other subscriptions, reading at the same time, cannot take the same
// room) and adds what it handed out when it is done; acks are not subtracted. So the count is
// never below the truth (but for a FIFO queue's owed message, which goes first whatever the
// bounds: pop-reader.ts), and a pass is needed only when it says a tenant has no room: at most
// every REFRESH_MS. While a tenant is at its bound a timer makes the passes, and the first that
// finds room wakes the tenant's parked receives.
import type { Subscription } from './consumer-ledger.js';
import { tenantOfStoreTopic } from './names.js';

/** How stale the counts may be: acks at the bound make room for receives this much later. */
export const REFRESH_MS = 250;

/** How often a tenant reaching its bound is logged, at most. */
const FULL_LOG_INTERVAL_MS = 60_000;

export interface TenantInflightOptions {
  /** Messages in flight per tenant on this broker before its receives take no new ones. */
  limit: number;
  subscriptions: () => Iterable<Subscription>;
  /** A tenant at its bound has room again: wake its parked receives. */
  onRoom: (tenantId: string) => void;
  /** A tenant reached its bound (at most once a minute per tenant). */
  onFull?: (tenantId: string, inflight: number) => void;
  now?: () => number;
}

export class TenantInflight {
  /** In flight per tenant as of the last pass, plus what receives handed out since. */
  private counts = new Map<string, number>();
  /** Room reserved by receives still reading (not in the ledger yet). */
  private readonly reserved = new Map<string, number>();
  private countedAtMs = Number.NEGATIVE_INFINITY;
  private readonly full = new Set<string>();
  private readonly loggedAtMs = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: TenantInflightOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Reserves room for up to `wanted` messages of the tenant; returns how many it may put in
   *  flight. Every reservation is given back with release(), read or not. */
  reserve(tenantId: string, wanted: number): number {
    if (wanted <= 0) return 0;
    if (this.countedAtMs === Number.NEGATIVE_INFINITY) this.count(); // the first: what replay left
    let room = this.roomOf(tenantId);
    // the count only over-counts between passes: look again before refusing
    if (room < wanted && this.now() - this.countedAtMs >= REFRESH_MS) {
      this.count();
      room = this.roomOf(tenantId);
    }
    const granted = Math.max(0, Math.min(wanted, room));
    if (granted > 0) this.reserved.set(tenantId, (this.reserved.get(tenantId) ?? 0) + granted);
    if (granted < wanted) this.markFull(tenantId);
    return granted;
  }

  /** Gives back `reserved` room once the receive's deliveries are in the ledger (or failed),
   *  `used` of it having been put in flight. */
  release(tenantId: string, reserved: number, used: number): void {
    if (reserved > 0) {
      const left = (this.reserved.get(tenantId) ?? 0) - reserved;
      if (left > 0) this.reserved.set(tenantId, left);
      else this.reserved.delete(tenantId);
    }
    if (used > 0) this.counts.set(tenantId, (this.counts.get(tenantId) ?? 0) + used);
  }

  /** Stops the timer (the broker is closing); nothing starts it again. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.full.clear();
  }

  /** Counts again now; wakes the tenants at their bound that have room again. */
  refresh(): void {
    if (this.closed) return;
    this.count();
    for (const tenantId of [...this.full]) {
      if (this.roomOf(tenantId) <= 0) continue;
      this.full.delete(tenantId);
      this.options.onRoom(tenantId);
    }
    if (this.full.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private roomOf(tenantId: string): number {
    return (
      this.options.limit - (this.counts.get(tenantId) ?? 0) - (this.reserved.get(tenantId) ?? 0)
    );
  }

  private count(): void {
    const counts = new Map<string, number>();
    for (const sub of this.options.subscriptions()) {
      const inflight = sub.inflightCount();
      if (inflight === 0) continue;
      const tenantId = tenantOfStoreTopic(sub.topic);
      counts.set(tenantId, (counts.get(tenantId) ?? 0) + inflight);
    }
    this.counts = counts;
    this.countedAtMs = this.now();
  }

  private markFull(tenantId: string): void {
    if (this.closed || this.full.has(tenantId)) return;
    this.full.add(tenantId);
    const now = this.now();
    if (now - (this.loggedAtMs.get(tenantId) ?? Number.NEGATIVE_INFINITY) >= FULL_LOG_INTERVAL_MS) {
      this.loggedAtMs.set(tenantId, now);
      this.options.onFull?.(tenantId, this.counts.get(tenantId) ?? 0);
    }
    this.timer ??= setInterval(() => this.refresh(), REFRESH_MS).unref();
  }
}
