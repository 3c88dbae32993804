// The message appender: refusals before anything is placed, store time that never goes back,
// queue offsets assigned as records are placed, and the durable round handed to the dispatcher.
import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import { CommitLog } from '../../../src/store/commit-log.js';
import { FileCache } from '../../../src/store/file-cache.js';
import type { AppendMessage } from '../../../src/store/index.js';
import { MessageAppender, type StoreRequest } from '../../../src/store/message-appender.js';
import { QueuePageCache } from '../../../src/store/queue-page-cache.js';
import { QueueTable } from '../../../src/store/queue-table.js';
import { ReadCache } from '../../../src/store/read-cache.js';
import type { DispatchRecord } from '../../../src/store/record.js';
import { DiskWatermark } from '../../../src/store/retention.js';

async function setup(
  t: Test,
  options: { segmentBytes?: number; lastStoreTimestampMs?: number } = {},
) {
  const dir = t.testdir();
  const cache = new FileCache(8);
  const dispatched: { records: DispatchRecord[]; end: number }[] = [];
  const queues = new QueueTable(dir, join(dir, 'consumequeue'), 64, cache, new QueuePageCache(0));
  const readCache = new ReadCache(1 << 20);
  const disk = new DiskWatermark(dir, 1);
  // The log's round hook calls the appender made after it.
  const late: { appender?: MessageAppender } = {};
  const { log } = await CommitLog.open<StoreRequest>({
    name: 'commit log',
    dir: join(dir, 'commitlog'),
    segmentBytes: options.segmentBytes ?? 1 << 20,
    cache,
    flushPolicy: 'sync',
    asyncFlushIntervalMs: 1000,
    maxPendingBytes: 1 << 20,
    fromLogOffset: 0,
    onFrame: () => undefined,
    afterDurable: (round) => late.appender!.afterDurable(round),
  });
  const appender = new MessageAppender({
    log,
    queues,
    disk,
    readCache,
    maxRecordBytes: 4096,
    diskCheckIntervalMs: 1234,
    lastStoreTimestampMs: options.lastStoreTimestampMs ?? 0,
    dispatch: (records, end) => {
      dispatched.push({ records, end });
      return Promise.resolve();
    },
  });
  late.appender = appender;
  t.teardown(async () => {
    await log.close();
    await cache.closeAll();
  });
  return { log, queues, readCache, disk, appender, dispatched };
}

const msg = (queueId: number, i: number, extra: Partial<AppendMessage> = {}): AppendMessage => ({
  topic: 't',
  queueId,
  body: Buffer.alloc(100, i),
  bornTimestampMs: 1,
  ...extra,
});

t.test('a batch gets dense queue offsets per queue, in call order, in one round', async (t) => {
  const { appender, dispatched, queues, readCache } = await setup(t);
  const results = await appender.append([msg(0, 0), msg(1, 1), msg(0, 2, { keys: ['k'] })]);
  t.same(
    results.map((r) => r.queueOffset),
    [0, 0, 1],
  );
  t.same(
    results.map((r) => r.logOffset),
    [0, results[0].size, results[0].size + results[1].size],
  );
  t.equal(new Set(results.map((r) => r.storeTimestampMs)).size, 1, 'one store time a batch');
  t.equal(dispatched.length, 1);
  const { records, end } = dispatched[0];
  t.same(
    records.map((r) => [r.queueId, r.queueOffset, r.logOffset, r.keys]),
    [
      [0, 0, 0, undefined],
      [1, 0, results[1].logOffset, undefined],
      [0, 1, results[2].logOffset, ['k']],
    ],
  );
  t.equal(end, results[2].logOffset + results[2].size);
  t.equal(queues.get('t', 0)?.nextQueueOffset, 2);
  t.not(readCache.find(results[1].logOffset, results[1].size), null, 'recent records cached');
  t.equal(appender.appendedMessages, 3);
  const [one] = await appender.append([msg(1, 3)]);
  t.equal(one.queueOffset, 1, 'a single append continues the queue');
});

t.test('a refused message refuses the whole append before anything is placed', async (t) => {
  const { appender, log, queues } = await setup(t);
  t.throws(() => appender.append([msg(0, 0), msg(0, 1, { body: Buffer.alloc(5000) })]), {
    code: 'RecordTooLarge',
  });
  t.throws(() => appender.append([msg(0, 0), msg(-1, 1)]), { code: 'InvalidArgument' });
  t.throws(() => appender.append([msg(0, 0, { topic: '' })]), { code: 'InvalidArgument' });
  t.equal(log.endLogOffset, 0);
  t.equal(queues.get('t', 0), undefined, 'no queue offset handed out');
});

t.test('below the disk watermark appends are refused with DiskFull', async (t) => {
  const { appender, disk, log } = await setup(t);
  disk.wrote(Number.MAX_SAFE_INTEGER);
  t.throws(() => appender.append([msg(0, 0)]), {
    code: 'DiskFull',
    retryAfterMs: 1234,
  });
  t.equal(log.endLogOffset, 0);
});

t.test('store time never goes back, even behind a clock that did', async (t) => {
  const future = Date.now() + 3_600_000;
  const { appender } = await setup(t, { lastStoreTimestampMs: future });
  const [r] = await appender.append([msg(0, 0)]);
  t.equal(r.storeTimestampMs, future);
});

t.test('a roll inside a batch: records on both sides, the blank frame not cached', async (t) => {
  const { appender, readCache, dispatched } = await setup(t, { segmentBytes: 512 });
  const results = await appender.append([msg(0, 0), msg(0, 1), msg(0, 2), msg(0, 3)]);
  const segmentsOf = results.map((r) => Math.floor(r.logOffset / 512));
  t.ok(segmentsOf[3] > segmentsOf[0], 'the batch crossed a segment');
  for (const r of results) t.not(readCache.find(r.logOffset, r.size), null);
  const gap = results.findIndex(
    (r, i) => i > 0 && r.logOffset !== results[i - 1].logOffset + results[i - 1].size,
  );
  t.ok(gap > 0);
  const blankAt = results[gap - 1].logOffset + results[gap - 1].size;
  t.equal(readCache.find(blankAt, 20), null, 'the blank frame is not a record');
  t.equal(dispatched[0].records.length, 4);
  t.same(
    results.map((r) => r.queueOffset),
    [0, 1, 2, 3],
  );
});
