// Transaction benchmark (issue #14), the broker alone: memory per undecided half message, the
// start-up rebuild of the undecided set, and a check-back storm (100,000 undecided offered and
// rolled back at once) set against ordinary publishes measured in the same run without a storm
// (the yardstick): latency p50/p99 of a one-message publish, and the ratio.
//   npm run bench:transactions [-- --undecided 100000 --seconds 5 --checkers 8]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import type { PublishMessage, TopicDescriptor } from '../../src/model/index.js';
import { summarizeLatencies, type LatencySummary } from './lib/percentiles.js';
import { formatCount, formatFixed, formatMs, formatRatio, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const UNDECIDED = flag('undecided', 100_000);
const SECONDS = flag('seconds', 5);
const CHECKERS = flag('checkers', 8);

function topicOf(topic: string, messageType: TopicDescriptor['messageType']): TopicDescriptor {
  return {
    tenantId: 'bench',
    instanceId: 'i1',
    topic,
    messageType,
    queueCount: 8,
    retentionHours: 72,
    dedupWindowMs: 600_000,
    createdAt: Date.now() - 1000,
  };
}

const message = (i: number): PublishMessage => ({
  body: Buffer.from(`message ${i} `.padEnd(256, '.')),
  bodyEncoding: 'utf8',
});

/** One publisher of one message at a time for `seconds`: the latency of each. */
async function publishLatency(broker: Broker, topic: TopicDescriptor, seconds: number) {
  const samples: number[] = [];
  const end = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < end; i++) {
    const start = performance.now();
    await broker.publish(topic, [message(i)]);
    samples.push(performance.now() - start);
  }
  return summarizeLatencies(samples);
}

function open(dir: string, options: { storm: boolean }) {
  return Broker.open({
    dataDir: dir,
    brokerId: 0,
    macKey: Buffer.alloc(32, 7),
    trace: false,
    store: { minFreeDiskBytes: 0 },
    transactions: options.storm
      ? { checkDelayMs: 0, maxChecks: 1, maxCheckIntervalMs: 200, sweepIntervalMs: 100 }
      : { checkDelayMs: 3600_000 },
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-txn-'));
  const plain = topicOf('plain', 'NORMAL');
  const orders = topicOf('orders', 'TRANSACTION');
  try {
    let broker = await open(dir, { storm: false });
    const yardstick = await publishLatency(broker, plain, SECONDS);

    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const fillStart = performance.now();
    const batch = Array.from({ length: 32 }, (_, i) => message(i));
    let stored = 0;
    while (stored < UNDECIDED) {
      await broker.publish(orders, batch);
      stored += batch.length;
    }
    const fillMs = performance.now() - fillStart;
    global.gc?.();
    const bytesPerHalf = (process.memoryUsage().heapUsed - heapBefore) / stored;
    await broker.close();

    const rebuildStart = performance.now();
    broker = await open(dir, { storm: true });
    const rebuildMs = performance.now() - rebuildStart;
    const rebuilt = broker.undecidedTransactions();

    // the storm: every half is due at once; checkers take offers, the sweep rolls them back
    let storming = true;
    let offered = 0;
    const checkers = Array.from({ length: CHECKERS }, async () => {
      while (storming) {
        const answer = await broker.checkTransactions(orders, { maxMessages: 32, waitMs: 1000 });
        offered += answer.length;
      }
    });
    const stormStart = performance.now();
    const during: LatencySummary = await publishLatency(broker, plain, SECONDS);
    const leftAfter = broker.undecidedTransactions();
    storming = false;
    await Promise.all(checkers);
    const stormSeconds = (performance.now() - stormStart) / 1000;
    await broker.close();

    console.log(
      `${formatCount(stored)} undecided half messages of 256 bytes, ${CHECKERS} checkers, ` +
        `one-message publishes for ${SECONDS} s each; heap ${global.gc ? 'after gc' : '(no --expose-gc: approximate)'}\n`,
    );
    console.log(
      formatTable(
        [
          { header: 'row' },
          { header: 'figure', align: 'right' },
          { header: 'publish p50 ms', align: 'right' },
          { header: 'publish p99 ms', align: 'right' },
          { header: 'p99 vs yardstick', align: 'right' },
        ],
        [
          [
            'yardstick: publishes, no transactions',
            `${formatCount(yardstick.count)} publishes`,
            formatMs(yardstick.p50Ms),
            formatMs(yardstick.p99Ms),
            '1.00×',
          ],
          [
            'store the undecided halves',
            `${formatCount((stored / fillMs) * 1000)} halves/s`,
            '',
            '',
            '',
          ],
          ['memory per undecided half', `${formatFixed(bytesPerHalf)} B`, '', '', ''],
          [
            'rebuild at start (open)',
            `${formatCount(rebuilt)} in ${formatMs(rebuildMs)} ms`,
            '',
            '',
            '',
          ],
          [
            'publishes during the storm',
            `${formatCount(offered)} offers, ${formatCount(stored - leftAfter)} rolled back in ${formatFixed(stormSeconds, 1)} s`,
            formatMs(during.p50Ms),
            formatMs(during.p99Ms),
            formatRatio(during.p99Ms, yardstick.p99Ms),
          ],
        ],
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
