import t from 'tap';
import { RateLimiter } from '../../src/gateway/plugins/quotas.js';

t.test('token buckets: burst of one second, refill, debt, retry hints', async (t) => {
  const limiter = new RateLimiter();
  const now = 1_000_000;
  t.equal(limiter.available('a', 'publish', 10, now), 10);
  limiter.take('a', 'publish', 10, 8, now);
  t.equal(limiter.available('a', 'publish', 10, now), 2);
  t.throws(() => limiter.take('a', 'publish', 10, 5, now), {
    code: 'Throttled',
    retryAfterMs: 300,
  });
  t.equal(limiter.available('a', 'publish', 10, now + 500), 7, 'refills at the rate');
  t.equal(limiter.available('a', 'publish', 10, now + 60_000), 10, 'capped at one second');
  // a batch over the quota can never fit the bucket: it passes when the bucket is full, into
  // debt (the next calls wait it out, so the rate holds over time), instead of being refused
  // with a retry-after that would never come true
  t.doesNotThrow(() => limiter.take('a', 'publish', 10, 25, now + 60_000), 'a batch of 25 at 10/s');
  t.throws(() => limiter.take('a', 'publish', 10, 1, now + 60_000), {
    code: 'Throttled',
    retryAfterMs: 1600,
  });
  t.throws(() => limiter.take('a', 'publish', 10, 25, now + 61_000), {
    code: 'Throttled',
    retryAfterMs: 1500,
    message: /passes once the quota's bucket is full/,
  });
  t.doesNotThrow(() => limiter.take('a', 'publish', 10, 25, now + 62_500), 'full again');
  // a call that failed after taking its tokens gives them back (never above one second's worth)
  limiter.refund('a', 'publish', 10, 25, now + 62_500);
  t.equal(limiter.available('a', 'publish', 10, now + 62_500), 10);
  limiter.debit('a', 'consume', 10, 15, now);
  t.equal(limiter.available('a', 'consume', 10, now), 0, 'in debt');
  t.throws(() => limiter.requireOne('a', 'consume', 10, now), {
    code: 'Throttled',
    retryAfterMs: 600,
  });
  t.doesNotThrow(() => limiter.requireOne('a', 'consume', 10, now + 600));
  t.equal(limiter.available('b', 'publish', 10, now), 10, 'per tenant');
});
