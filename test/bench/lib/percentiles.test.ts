import t from 'tap';
import {
  LatencyRecorder,
  median,
  percentile,
  summarizeLatencies,
} from '../../../scripts/bench/lib/percentiles.js';

t.test('percentile is nearest-rank over sorted samples', async (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  t.equal(percentile(sorted, 50), 50);
  t.equal(percentile(sorted, 99), 99);
  t.equal(percentile(sorted, 100), 100);
  t.equal(percentile(sorted, 0), 1, 'p0 is the smallest sample');
  t.equal(percentile([7], 99), 7);
  t.equal(percentile([1, 2, 3], 50), 2);
  t.ok(Number.isNaN(percentile([], 50)), 'no samples: NaN');
  t.throws(() => percentile(sorted, 101), RangeError);
  t.throws(() => percentile(sorted, Number.NaN), RangeError);
});

t.test('summarizeLatencies sorts a copy and reports p50, p99, max and mean', async (t) => {
  const samples = [5, 1, 4, 2, 3];
  const summary = summarizeLatencies(samples);
  t.same(summary, { count: 5, p50Ms: 3, p99Ms: 5, maxMs: 5, meanMs: 3 });
  t.same(samples, [5, 1, 4, 2, 3], 'input untouched');
  const empty = summarizeLatencies([]);
  t.equal(empty.count, 0);
  t.ok(Number.isNaN(empty.p50Ms) && Number.isNaN(empty.maxMs) && Number.isNaN(empty.meanMs));
});

t.test('one stall among fast samples shows in p99 and max, not p50', async (t) => {
  const samples = Array.from({ length: 1000 }, () => 1);
  for (let i = 0; i < 20; i++) samples[i * 50] = 200;
  const summary = summarizeLatencies(samples);
  t.equal(summary.p50Ms, 1);
  t.equal(summary.p99Ms, 200);
  t.equal(summary.maxMs, 200);
});

t.test('median of runs ignores missing figures and averages the middle pair', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([Number.NaN, 10, 30]), 20);
  t.ok(Number.isNaN(median([])));
  t.ok(Number.isNaN(median([Number.NaN])));
});

t.test('LatencyRecorder grows past its first buffer and summarizes what it recorded', async (t) => {
  const recorder = new LatencyRecorder();
  for (let i = 1; i <= 5000; i++) recorder.record(i);
  t.equal(recorder.count, 5000);
  const summary = recorder.summarize();
  t.equal(summary.count, 5000);
  t.equal(summary.p50Ms, 2500);
  t.equal(summary.p99Ms, 4950);
  t.equal(summary.maxMs, 5000);
});
