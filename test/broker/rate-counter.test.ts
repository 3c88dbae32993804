import t from 'tap';
import { RateCounter } from '../../src/broker/rate-counter.js';

t.test('the rate is the mean over the last whole seconds and forgets older ones', async (t) => {
  const rate = new RateCounter(2);
  const base = 1_000_000;
  rate.add(10, base);
  rate.add(10, base + 500);
  rate.add(40, base + 1000);
  t.equal(rate.perSecond(base + 2000), 30, '(20 + 40) / 2');
  t.equal(rate.perSecond(base + 3000), 20, 'the first second left the window');
  t.equal(rate.perSecond(base + 60_000), 0);
  t.equal(rate.total, 60);
});
