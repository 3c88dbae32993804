import t from 'tap';
import { DEFAULT_BACKOFF_SECONDS, retryBackoffMs } from '../../src/broker/retry-policy.js';

t.test('the default follows RocketMQ levels and repeats the last one', async (t) => {
  t.equal(retryBackoffMs(undefined, 1), 1000);
  t.equal(retryBackoffMs(undefined, 2), 5000);
  t.equal(retryBackoffMs(undefined, 4), 30_000);
  t.equal(retryBackoffMs(undefined, 18), 7_200_000);
  t.equal(retryBackoffMs(undefined, 100), 7_200_000);
  t.equal(DEFAULT_BACKOFF_SECONDS.length, 18);
});

t.test('a group list of back-offs is used in order, then its last entry', async (t) => {
  const policy = { backoffSeconds: [0, 2, 7] };
  t.same(
    [1, 2, 3, 4, 9].map((a) => retryBackoffMs(policy, a)),
    [0, 2000, 7000, 7000, 7000],
  );
  t.equal(retryBackoffMs({ backoffSeconds: [] }, 3), 0);
});

t.test('an exponential rule grows by its multiplier up to its cap', async (t) => {
  const policy = { exponential: { initialSeconds: 1, multiplier: 2, maxSeconds: 10 } };
  t.same(
    [1, 2, 3, 4, 5, 50].map((a) => retryBackoffMs(policy, a)),
    [1000, 2000, 4000, 8000, 10_000, 10_000],
  );
});
