// Usage counted in this gateway's memory per (tenant, instance, hour) and flushed to Redis
// (HINCRBY on the hour's hash) every `flushIntervalMs` and when the gateway closes. Each bucket a
// flush writes goes under a random marker that Redis applies at most once (add-usage-3.lua); one
// that fails is sent again by the next flush under the same marker, beside (never merged into)
// the counts that came meanwhile: a write that missed its deadline while Redis stalled may still
// have been applied, and is not counted twice. With MAX_PENDING_BUCKETS buckets pending, counts
// for a new bucket are dropped (how many is logged at the next flush), so an outage of Redis
// cannot grow memory without bound. A crash loses at most the counts of one flush interval.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../telemetry/index.js';
import type { MarkedUsageDelta, UsageCounter, UsageDelta, UsageRepository } from '../meta/index.js';

export const USAGE_FLUSH_INTERVAL_MS = 10_000;
const HOUR_MS = 3_600_000;
const MAX_PENDING_BUCKETS = 100_000;

export class UsageMeter {
  private pending = new Map<string, UsageDelta>();
  /** Buckets a flush failed to write, to send again under their markers. */
  private retries: MarkedUsageDelta[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Counts dropped since the last flush because MAX_PENDING_BUCKETS buckets were pending. */
  private dropped = 0;
  /** Instances (`tenant/instance`) whose last storage sample was not 0, with its hour: their next
   *  sample of 0 in that hour is written (their topics deleted); other 0 samples are not (an idle
   *  instance would get a bucket every hour). */
  private readonly storing = new Map<string, number>();

  constructor(
    private readonly usage: UsageRepository,
    private readonly logger: Logger,
    private readonly flushIntervalMs = USAGE_FLUSH_INTERVAL_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  /** Adds `n` to a counter of the instance's current hour (storageBytes: sets the sample). */
  count(
    tenantId: string,
    instanceId: string,
    counter: UsageCounter,
    n = 1,
    nowMs = Date.now(),
  ): void {
    const hour = Math.floor(nowMs / HOUR_MS);
    if (counter === 'storageBytes') {
      const id = `${tenantId}/${instanceId}`;
      if (n !== 0) this.storing.set(id, hour);
      else if (this.storing.get(id) === hour) this.storing.delete(id);
      else return;
    } else if (n === 0) return;
    const key = `${tenantId}/${instanceId}/${hour}`;
    let delta = this.pending.get(key);
    if (delta === undefined) {
      if (this.pending.size + this.retries.length >= MAX_PENDING_BUCKETS) {
        this.dropped += 1;
        return;
      }
      delta = { tenantId, instanceId, hour, counters: {} };
      this.pending.set(key, delta);
    }
    delta.counters[counter] = counter === 'storageBytes' ? n : (delta.counters[counter] ?? 0) + n;
  }

  /** Writes the pending counts; one flush at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Writes every count made so far: after a flush already under way (whose batch was taken
   *  before the latest counts), one more. */
  async flushAll(): Promise<void> {
    await this.flushing;
    await this.flush();
  }

  /** Stops the timer and flushes what is left (graceful close). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushAll();
  }

  private async write(): Promise<void> {
    if (this.dropped > 0) {
      this.logger.warn(
        { dropped: this.dropped, pendingBuckets: this.pending.size },
        'usage counts dropped: too many buckets pending (Redis unreachable for long?)',
      );
      this.dropped = 0;
    }
    const hour = Math.floor(Date.now() / HOUR_MS);
    for (const [id, sampled] of this.storing) if (sampled < hour) this.storing.delete(id);
    if (this.pending.size === 0 && this.retries.length === 0) return;
    const batch: MarkedUsageDelta[] = [
      ...this.retries,
      ...[...this.pending.values()].map((delta) => ({
        ...delta,
        marker: randomBytes(12).toString('base64url'),
      })),
    ];
    this.pending = new Map();
    this.retries = [];
    const failed = await this.usage.add(batch).catch(() => batch);
    if (failed.length > 0) {
      this.retries = failed;
      this.logger.warn(
        { buckets: failed.length, of: batch.length },
        'usage flush failed: sent again by the next one',
      );
    }
  }
}

/** The API class of a tenant-plane route, for `apiCalls*` counters. */
export function apiClassOf(method: string, route: string): UsageCounter {
  if (method === 'POST' && route.endsWith('/messages')) return 'apiCallsPublish';
  if (/\/transactions\/:transactionId\/(commit|rollback)$/.test(route)) return 'apiCallsPublish';
  if (
    /\/(receive|receive-stream|ack|visibility|transactions\/check|dead-letters\/resend)$/.test(
      route,
    )
  )
    return 'apiCallsConsume';
  if (
    method === 'GET' &&
    /\/(messages|messages\/:messageId|trace|stats|dead-letters|usage|history)$/.test(route)
  )
    return 'apiCallsQuery';
  return 'apiCallsManage';
}
