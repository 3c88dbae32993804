import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MessageStore } from '../../src/store/index.js';
import { message, openTestStore, storeDir } from '../helpers/store.js';

interface Hooks {
  runRetention(nowMs?: number): Promise<number>;
  checkDisk(): Promise<void>;
  runCheckpoint(): Promise<void>;
}
const hooks = (s: MessageStore) => s as unknown as Hooks;

t.test(
  'retention deletes whole old segments, never the active one; reads below say expired',
  async (t) => {
    const dir = storeDir(t);
    const store = await openTestStore(t, dir, { retentionMs: 60_000, readCacheBytes: 0 });
    const results = [];
    for (let i = 0; i < 300; i += 10) {
      results.push(
        ...(await store.append(
          Array.from({ length: 10 }, (_, k) =>
            message('t', 0, i + k, { body: Buffer.alloc(500, i + k), keys: ['k'] }),
          ),
        )),
      );
    }
    const before = store.stats().segmentCount;
    t.ok(before >= 3);
    t.equal(await hooks(store).runRetention(Date.now()), 0, 'nothing old yet');
    const deleted = await hooks(store).runRetention(Date.now() + 120_000);
    t.equal(deleted, before - 1, 'all but the active segment');
    t.equal(store.stats().segmentCount, 1);
    t.equal(readdirSync(join(dir, 'commitlog')).length, 1);
    const { minQueueOffset, maxQueueOffset } = store.queueOffsets('t', 0);
    t.ok(minQueueOffset > 0, 'min queue offset moved up');
    t.equal(maxQueueOffset, 300);
    const expired = await store.readQueue('t', 0, 0, { maxMessages: 10 });
    t.equal(expired.status, 'OFFSET_EXPIRED');
    t.equal(expired.nextQueueOffset, minQueueOffset);
    const ok = await store.readQueue('t', 0, minQueueOffset, { maxMessages: 10 });
    t.equal(ok.status, 'FOUND');
    t.same(ok.messages[0].body, Buffer.alloc(500, minQueueOffset));
    t.equal(await store.readMessage(results[0].logOffset), null, 'expired by position');
    const keyed = await store.queryByKey('t', 'k', 1000);
    t.equal(keyed.length, 300 - minQueueOffset, 'key lookups skip deleted records');
    t.ok(
      readdirSync(join(dir, 'consumequeue', 't', '0')).length < 5,
      'consume-queue files below the log deleted',
    );
    t.equal(store.stats().retentionDeletedSegments, before - 1);
  },
);

t.test('the disk watermark refuses appends before the disk fills', async (t) => {
  const store = await openTestStore(t, storeDir(t), {
    minFreeDiskBytes: Number.MAX_SAFE_INTEGER / 2,
  });
  await t.rejects(store.append([message('t', 0, 0)]), { code: 'DiskFull', retriable: true });
  t.same(store.queueOffsets('t', 0), { minQueueOffset: 0, maxQueueOffset: 0 });
  const fine = await openTestStore(t, storeDir(t), { minFreeDiskBytes: 1 });
  await hooks(fine).checkDisk();
  t.ok(fine.stats().freeDiskBytes > 0);
  await fine.append([message('t', 0, 0)]);
});

t.test('timers run checkpoints and retention on their own', async (t) => {
  const dir = storeDir(t);
  const store = await openTestStore(t, dir, {
    checkpointIntervalMs: 5,
    retentionCheckIntervalMs: 5,
    diskCheckIntervalMs: 5,
    retentionMs: 0,
  });
  for (let i = 0; i < 200; i += 20) {
    await store.append(
      Array.from({ length: 20 }, (_, k) => message('t', 0, i + k, { body: Buffer.alloc(800) })),
    );
  }
  for (let i = 0; i < 100 && store.stats().segmentCount > 1; i++)
    await new Promise((r) => setTimeout(r, 10));
  t.equal(store.stats().segmentCount, 1);
  await hooks(store).runCheckpoint();
});
