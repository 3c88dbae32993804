// Parked receive requests. A receive that finds nothing parks here until a message lands in its
// topic (notify), an in-flight message of its group becomes due (the wake time), its wait ends,
// or its client goes away (abort) — whichever comes first; then it looks again. A notify wakes
// one waiter of each subscription (a group, or a broadcasting consumer): one receive per group
// is enough to take what landed, and one that fills its batch notifies again for the next.
// Parked requests are bounded per broker and per tenant: past the bound a receive is refused at
// once rather than queued without limit.
import { WharfError } from '../errors.js';

export interface LongPollLimits {
  maxParked: number;
  maxParkedPerTenant: number;
}

interface Waiter {
  topic: string;
  subscription: string;
  tenantId: string;
  wake: () => void;
}

export class LongPoll {
  /** topic → subscription → its waiters in arrival order */
  private readonly byTopic = new Map<string, Map<string, Set<Waiter>>>();
  private readonly perTenant = new Map<string, number>();
  /** A topic's last notify as a tick of `clock`, so a receive can tell whether a message landed
   *  since it looked. One clock for every topic: a topic notified after the map was cleared gets
   *  a tick no receive can have read before (a per-topic count would start again at 1). */
  private readonly versions = new Map<string, number>();
  private clock = 0;
  private parked = 0;
  private isClosed = false;

  constructor(private readonly limits: LongPollLimits) {}

  get parkedCount(): number {
    return this.parked;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  version(topic: string): number {
    return this.versions.get(topic) ?? 0;
  }

  /** Resolves at the first of: notify(topic), `wakeAtMs`, abort, close — at once when the topic
   *  was notified after `sinceVersion` was read (no lost wake-up between looking and parking). */
  park(
    topic: string,
    tenantId: string,
    wakeAtMs: number,
    sinceVersion: number,
    signal?: AbortSignal,
    subscription = '',
  ): Promise<void> {
    if (this.isClosed || signal?.aborted === true || this.version(topic) !== sinceVersion) {
      return Promise.resolve();
    }
    const tenantCount = this.perTenant.get(tenantId) ?? 0;
    if (tenantCount >= this.limits.maxParkedPerTenant) {
      throw new WharfError(
        'Throttled',
        `more than ${this.limits.maxParkedPerTenant} receives of this tenant are waiting`,
        { retryAfterMs: 1000 },
      );
    }
    if (this.parked >= this.limits.maxParked) {
      throw new WharfError('Unavailable', 'the broker holds its maximum of waiting receives', {
        retryAfterMs: 1000,
      });
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        topic,
        subscription,
        tenantId,
        wake: () => {
          if (timer !== undefined) clearTimeout(timer);
          signal?.removeEventListener('abort', waiter.wake);
          if (this.remove(waiter)) resolve();
        },
      };
      let subs = this.byTopic.get(topic);
      if (subs === undefined) {
        subs = new Map();
        this.byTopic.set(topic, subs);
      }
      let waiters = subs.get(subscription);
      if (waiters === undefined) {
        waiters = new Set();
        subs.set(subscription, waiters);
      }
      waiters.add(waiter);
      this.parked++;
      this.perTenant.set(tenantId, tenantCount + 1);
      signal?.addEventListener('abort', waiter.wake, { once: true });
      const delayMs = Math.max(0, wakeAtMs - Date.now());
      if (Number.isFinite(delayMs)) timer = setTimeout(waiter.wake, Math.min(delayMs, 2 ** 31 - 1));
    });
  }

  /** Wakes the oldest waiter of each subscription parked on the topic. */
  notify(topic: string): void {
    // a clear makes a receive parked on a cleared topic look once more, never miss a notify
    if (this.versions.size > 100_000) this.versions.clear();
    this.versions.set(topic, ++this.clock);
    const subs = this.byTopic.get(topic);
    if (subs === undefined) return;
    for (const waiters of [...subs.values()]) {
      const first = waiters.values().next();
      if (first.done !== true) first.value.wake();
    }
  }

  /** Wakes the oldest waiter of each subscription parked on the tenant's topics (its in-flight
   *  bound has room again, tenant-inflight.ts). */
  notifyTenant(tenantId: string): void {
    const prefix = `${tenantId}/`;
    for (const topic of [...this.byTopic.keys()]) if (topic.startsWith(prefix)) this.notify(topic);
  }

  /** Wakes everything and refuses to park again (shutdown). */
  close(): void {
    this.isClosed = true;
    for (const subs of [...this.byTopic.values()]) {
      for (const waiters of [...subs.values()]) for (const waiter of [...waiters]) waiter.wake();
    }
  }

  private remove(waiter: Waiter): boolean {
    const subs = this.byTopic.get(waiter.topic);
    const waiters = subs?.get(waiter.subscription);
    if (subs === undefined || waiters === undefined || !waiters.delete(waiter)) return false;
    if (waiters.size === 0) subs.delete(waiter.subscription);
    if (subs.size === 0) this.byTopic.delete(waiter.topic);
    this.parked--;
    const count = (this.perTenant.get(waiter.tenantId) ?? 1) - 1;
    if (count === 0) this.perTenant.delete(waiter.tenantId);
    else this.perTenant.set(waiter.tenantId, count);
    return true;
  }
}
