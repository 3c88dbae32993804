// The in-flight bound of a tenant on this broker: messages received and not yet acked or moved to
// a dead-letter queue, over every group, topic and broadcasting consumer id of the tenant. The
// per-queue cap bounds one subscription; without this, a tenant receiving and never acking over
// many groups or consumer ids grows the broker's memory (about 300 bytes a message in flight) and
// its snapshot without limit.
//
// Counted, not tracked: every REFRESH_MS at most, when a receive asks, one pass over the ledger's
// cursors counts each tenant's in-flight messages; between passes what receives hand out is added
// and what acks free is not. So the bound is never passed, and room an ack made shows at the next
// pass. While a tenant is at its bound a timer makes the passes, and the first that finds room
// wakes the tenant's parked receives.
import type { Subscription } from './consumer-ledger.js';

/** How stale the counts may be: acks at the bound make room for receives this much later. */
export const REFRESH_MS = 250;

export interface TenantInflightOptions {
  /** Messages in flight per tenant on this broker before its receives take no new ones. */
  limit: number;
  subscriptions: () => Iterable<Subscription>;
  /** A tenant at its bound has room again: wake its parked receives. */
  onRoom: (tenantId: string) => void;
  /** A tenant reached its bound (once, until it has room again). */
  onFull?: (tenantId: string, inflight: number) => void;
  now?: () => number;
}

/** The tenant of a store topic name (tenant/instance/topic, see names.ts). */
export function tenantOfStoreTopic(name: string): string {
  const slash = name.indexOf('/');
  return slash < 0 ? name : name.slice(0, slash);
}

export class TenantInflight {
  private counts = new Map<string, number>();
  private countedAtMs = Number.NEGATIVE_INFINITY;
  private readonly full = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: TenantInflightOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** How many more messages the tenant's receives may put in flight now. */
  room(tenantId: string): number {
    if (this.now() - this.countedAtMs >= REFRESH_MS) this.count();
    const room = this.options.limit - (this.counts.get(tenantId) ?? 0);
    if (room <= 0) this.markFull(tenantId);
    return Math.max(0, room);
  }

  /** A receive put `count` messages of the tenant in flight. */
  handedOut(tenantId: string, count: number): void {
    if (count <= 0) return;
    const inflight = (this.counts.get(tenantId) ?? 0) + count;
    this.counts.set(tenantId, inflight);
    if (inflight >= this.options.limit) this.markFull(tenantId);
  }

  /** Stops the timer (the broker is closing). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.full.clear();
  }

  /** Counts again now; wakes the tenants at their bound that have room again. */
  refresh(): void {
    this.count();
    for (const tenantId of [...this.full]) {
      if ((this.counts.get(tenantId) ?? 0) >= this.options.limit) continue;
      this.full.delete(tenantId);
      this.options.onRoom(tenantId);
    }
    if (this.full.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
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
    if (this.full.has(tenantId)) return;
    this.full.add(tenantId);
    this.options.onFull?.(tenantId, this.counts.get(tenantId) ?? 0);
    this.timer ??= setInterval(() => this.refresh(), REFRESH_MS).unref();
  }
}
