// Rate quotas: a token bucket per tenant and quota in each gateway process (a second of burst).
// Local buckets cost nothing per request; with N gateways behind a balancer a tenant may reach
// up to N times its rate, which is the documented trade-off (count quotas, by contrast, are
// exact: Lua in Redis). `publishPerSecond` counts published messages; `consumePerSecond`
// counts received messages, debited after the receive (so a receive asks for no more than the
// bucket holds, and one that overdraws it throttles the next).
import { WharfError } from '../../errors.js';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export type RateQuota = 'publish' | 'consume';

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** `onThrottled`: told of each refusal (the wharf_throttled_total metric). */
  constructor(
    private readonly onThrottled: (tenantId: string, quota: RateQuota) => void = () => undefined,
  ) {}

  private bucket(key: string, ratePerSecond: number, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: ratePerSecond, updatedAt: now };
      this.buckets.set(key, b);
    } else if (now > b.updatedAt) {
      b.tokens = Math.min(ratePerSecond, b.tokens + ((now - b.updatedAt) * ratePerSecond) / 1000);
      b.updatedAt = now;
    }
    return b;
  }

  /** Whole tokens available now (0 when in debt). */
  available(tenantId: string, quota: RateQuota, ratePerSecond: number, now = Date.now()) {
    return Math.max(0, Math.floor(this.bucket(`${quota}|${tenantId}`, ratePerSecond, now).tokens));
  }

  /** Takes `n` tokens or throws Throttled with the wait until they are there. */
  take(tenantId: string, quota: RateQuota, ratePerSecond: number, n: number, now = Date.now()) {
    const b = this.bucket(`${quota}|${tenantId}`, ratePerSecond, now);
    // more than the bucket holds (a batch over the per-second quota) passes when the bucket is
    // full, into debt that the next calls wait out: the rate holds over time, and the batch is
    // not refused with a retry-after that would never come true
    const need = Math.min(n, ratePerSecond);
    if (b.tokens >= need) {
      b.tokens -= n;
      return;
    }
    this.onThrottled(tenantId, quota);
    throw throttled(quota, ((need - b.tokens) * 1000) / ratePerSecond, ratePerSecond, n);
  }

  /** Gives back `n` tokens taken for a call that then failed (its retry is charged again). */
  refund(tenantId: string, quota: RateQuota, ratePerSecond: number, n: number, now = Date.now()) {
    const b = this.bucket(`${quota}|${tenantId}`, ratePerSecond, now);
    b.tokens = Math.min(ratePerSecond, b.tokens + n);
  }

  /** Takes `n` tokens even into debt (after the fact: messages already received). */
  debit(tenantId: string, quota: RateQuota, ratePerSecond: number, n: number, now = Date.now()) {
    this.bucket(`${quota}|${tenantId}`, ratePerSecond, now).tokens -= n;
  }

  /** Throws Throttled when the bucket holds less than one token. */
  requireOne(tenantId: string, quota: RateQuota, ratePerSecond: number, now = Date.now()) {
    const b = this.bucket(`${quota}|${tenantId}`, ratePerSecond, now);
    if (b.tokens >= 1) return;
    this.onThrottled(tenantId, quota);
    throw throttled(quota, ((1 - b.tokens) * 1000) / ratePerSecond, ratePerSecond, 1);
  }
}

function throttled(quota: RateQuota, waitMs: number, rate: number, n: number): WharfError {
  const message =
    n > rate
      ? `${n} messages are over the ${quota} quota of ${rate} per second: the batch passes once the quota's bucket is full`
      : `the ${quota} quota (${rate}/s) is exhausted`;
  return new WharfError('Throttled', message, { retryAfterMs: Math.max(1, Math.ceil(waitMs)) });
}
