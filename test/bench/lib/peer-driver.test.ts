import t from 'tap';
import {
  configNumber,
  configString,
  throughput,
  uniqueName,
  watchProgress,
} from '../../../scripts/bench/lib/peer-driver.js';

t.test('throughput is messages over seconds', async (t) => {
  t.same(throughput(1000, 500), { messages: 1000, elapsedMs: 500, msgPerSec: 2000 });
  t.same(throughput(10, 1, 256).window, 256);
  t.ok(Number.isNaN(throughput(10, 0).msgPerSec));
});

t.test('config fields fall back when absent and are refused when mistyped', async (t) => {
  t.equal(configNumber({}, 'window', 256), 256);
  t.equal(configNumber({ window: 64 }, 'window', 256), 64);
  t.throws(() => configNumber({ window: '64' }, 'window', 256), /config.window must be a number/);
  t.equal(configString({}, 'url', 'redis://x'), 'redis://x');
  t.equal(configString({ mode: 'b' }, 'mode', 'a', ['a', 'b']), 'b');
  t.throws(
    () => configString({ mode: 'c' }, 'mode', 'a', ['a', 'b']),
    /config.mode must be a or b/,
  );
  t.throws(() => configString({ url: 1 }, 'url', ''), /must be a string/);
});

t.test('names are unique per call and keep the prefix and separator', async (t) => {
  const a = uniqueName('wharf-bench');
  const b = uniqueName('wharf-bench');
  t.not(a, b);
  t.match(a, /^wharf-bench-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+$/);
  t.match(uniqueName('WHARF_BENCH', '_'), /^WHARF_BENCH_[a-z0-9_]+$/);
});

t.test('a stalled count is reported once; progress or stopping prevents it', async (t) => {
  let count = 0;
  let stalls = 0;
  await new Promise<void>((resolve) => {
    watchProgress(
      () => count,
      20,
      () => {
        stalls++;
        resolve();
      },
    );
  });
  t.equal(stalls, 1);
  let moved = 0;
  const stop = watchProgress(
    () => count++,
    30,
    () => moved++,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  stop();
  t.equal(moved, 0, 'a moving count never stalls');
});
