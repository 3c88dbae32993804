// Usage of each instance in hourly buckets: one hash per (instance, hour) of counters, added to
// with HINCRBY by the gateways' flushes (storageBytes, a gauge, is set with HSET: the last sample
// of the hour), expiring USAGE_TTL_MS after the hour's last write. A tenant's index of the
// instances with usage (and the last hour of each) is written with the buckets, so the usage of
// an instance or tenant since deleted stays readable as long as its buckets. A query reads a
// bounded range of hours (MAX_USAGE_HOURS) with one pipeline.
import { USAGE_COUNTERS, type UsageBucket, type UsageCounter } from './types.js';
import type { RepoContext } from './repo-context.js';

export const HOUR_MS = 3_600_000;
/** Buckets are kept about 400 days: a year of bills, and a margin. */
export const USAGE_TTL_MS = 400 * 24 * HOUR_MS;
/** The longest range one query reads (31 days of hours). */
export const MAX_USAGE_HOURS = 31 * 24;
const USAGE_TTL_HOURS = USAGE_TTL_MS / HOUR_MS;

/** How long a flush's marker is kept. A delta is sent again at the gateway's next flush (10 s
 *  at most) after its answer was lost, and Redis ran the first send, if at all, before it (one
 *  connection): minutes are a wide margin. One marker per bucket a flush writes: a day of them
 *  came to about 1.7 million for a tenant of 20 instances behind 10 gateways. */
const MARKER_TTL_MS = 10 * 60_000;

/** Counts of one instance in one hour to add (storageBytes: a sample, set rather than added). */
export interface UsageDelta {
  tenantId: string;
  instanceId: string;
  /** Hours since the epoch. */
  hour: number;
  counters: Partial<Record<UsageCounter, number>>;
}

/** A delta with the marker it is applied under, at most once (random, kept by its retries). */
export interface MarkedUsageDelta extends UsageDelta {
  marker: string;
}

export class UsageRepository {
  constructor(private readonly ctx: RepoContext) {}

  /**
   * Adds every delta, each at most once under its marker (add-usage-3.lua): a delta whose
   * answer was lost may have been applied, so it is sent again under the same marker, never
   * merged into a later one. Resolves with the deltas that failed (the caller keeps them).
   */
  async add(deltas: readonly MarkedUsageDelta[], nowMs = Date.now()): Promise<MarkedUsageDelta[]> {
    const { keys, scripts } = this.ctx;
    const results = await Promise.allSettled(
      deltas.map((delta) => {
        const args: (string | number)[] = [
          delta.marker,
          nowMs,
          delta.instanceId,
          delta.hour,
          USAGE_TTL_MS,
          USAGE_TTL_HOURS,
          MARKER_TTL_MS,
        ];
        for (const [counter, value] of Object.entries(delta.counters)) {
          // a 0 adds nothing; a storage sample of 0 is a sample (UsageMeter writes one only
          // after one that was not)
          if (value === undefined || (value === 0 && counter !== 'storageBytes')) continue;
          args.push(counter, value, counter === 'storageBytes' ? 'set' : 'add');
        }
        return scripts.run(
          'add-usage',
          [
            keys.usage(delta.tenantId, delta.instanceId, delta.hour),
            keys.usageInstances(delta.tenantId),
            keys.usageMarkers(delta.tenantId),
          ],
          args,
        );
      }),
    );
    return deltas.filter((_, i) => results[i].status === 'rejected');
  }

  /** The instances of the tenant with usage (deleted ones included) → the start of the last
   *  hour they have usage in, epoch ms. */
  async instances(tenantId: string): Promise<Map<string, number>> {
    const index = this.ctx.keys.usageInstances(tenantId);
    const flat = await this.ctx.redis.zrange(index, '0', '-1', 'WITHSCORES');
    const instances = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      instances.set(flat[i], Number(flat[i + 1]) * HOUR_MS);
    }
    return instances;
  }

  /** The buckets of the hours from `fromMs` to `toMs` (inclusive hours) that have any usage,
   *  oldest first, per instance in the order given. */
  async query(
    tenantId: string,
    instanceIds: string[],
    fromMs: number,
    toMs: number,
  ): Promise<UsageBucket[]> {
    const first = Math.floor(fromMs / HOUR_MS);
    const last = Math.floor(toMs / HOUR_MS);
    const slots: { instanceId: string; hour: number }[] = [];
    for (const instanceId of instanceIds) {
      for (let hour = first; hour <= last; hour++) slots.push({ instanceId, hour });
    }
    if (slots.length === 0) return [];
    const pipeline = this.ctx.redis.pipeline();
    for (const slot of slots)
      pipeline.hgetall(this.ctx.keys.usage(tenantId, slot.instanceId, slot.hour));
    const results = (await pipeline.exec()) ?? [];
    const buckets: UsageBucket[] = [];
    results.forEach(([err, value], index) => {
      if (err) throw err;
      const fields = value as Record<string, string>;
      if (Object.keys(fields).length === 0) return;
      const counters = Object.fromEntries(USAGE_COUNTERS.map((c) => [c, 0])) as Record<
        UsageCounter,
        number
      >;
      for (const counter of USAGE_COUNTERS) {
        const parsed = Number(fields[counter] ?? 0);
        counters[counter] = Number.isFinite(parsed) ? parsed : 0;
      }
      buckets.push({
        instanceId: slots[index].instanceId,
        hour: slots[index].hour * HOUR_MS,
        counters,
      });
    });
    return buckets;
  }
}
