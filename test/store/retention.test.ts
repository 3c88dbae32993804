import t from 'tap';
import { cpSync, existsSync, readdirSync } from 'node:fs';
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

/** Fills the first commit-log segment with 1,000-byte records of queue t/0 until a 3 KiB record
 *  no longer fits in it; resolves to the next queue offset. */
async function fillFirstSegment(store: MessageStore, segmentBytes: number): Promise<number> {
  for (let i = 0; ;) {
    const [r] = await store.append([message('t', 0, i++, { body: Buffer.alloc(1000, 1) })]);
    if (segmentBytes - (r.logOffset + r.size) < 4000) return i;
  }
}

const SEGMENT_BYTES = 64 * 1024;
const LONG_AGO_MS = 365 * 86_400_000;
/** Timers that would run on their own are an hour away: the test runs them. */
const byHand = {
  segmentBytes: SEGMENT_BYTES,
  checkpointIntervalMs: 3_600_000,
  retentionCheckIntervalMs: 3_600_000,
  retentionMs: 60_000,
  readCacheBytes: 0,
};

t.test(
  'retention leaves a segment a write round has yet to finish: a roll under it loses nothing acknowledged across a crash',
  async (t) => {
    const dir = storeDir(t);
    const store = await openTestStore(t, dir, byHand);
    let i = await fillFirstSegment(store, SEGMENT_BYTES);
    t.equal(store.stats().segmentCount, 1);
    // a round in flight, then retention (segment A long expired) and an append that rolls to
    // segment B: the roll's blank frame in A is written, and A synced, by a round still to come
    const inFlight = store.append([message('t', 0, i++, { body: Buffer.alloc(100, 2) })]);
    const retention = hooks(store).runRetention(Date.now() + LONG_AGO_MS);
    const rolled = store.append([message('t', 0, i++, { body: Buffer.alloc(3000, 3) })]);
    await Promise.all([retention, inFlight]);
    const [big] = await rolled;
    t.ok(big.logOffset >= SEGMENT_BYTES, 'the acknowledged record is in segment B');
    // once the rounds are done, A goes (if it has not gone already) and stays gone
    await hooks(store).runRetention(Date.now() + LONG_AGO_MS);
    t.equal(store.stats().segmentCount, 1);
    t.equal(readdirSync(join(dir, 'commitlog')).length, 1, 'only segment B is on disk');
    t.notOk(existsSync(join(dir, 'commitlog', '0'.repeat(20))), 'segment A is not written back');

    // SIGKILL now, the checkpoint still in A: the directory as a crash leaves it
    const crashed = storeDir(t);
    cpSync(dir, crashed, { recursive: true });
    const recovered = await openTestStore(t, crashed, { segmentBytes: SEGMENT_BYTES });
    const found = await recovered.readMessage(big.logOffset);
    t.same(found?.body, Buffer.alloc(3000, 3), 'the acknowledged record survives the crash');
    t.notOk(existsSync(join(crashed, 'quarantine')), 'nothing quarantined');
  },
);

t.test(
  'a crash after retention deleted every record of a queue whose entries were not yet written: the store opens and the queue starts at its first record left',
  async (t) => {
    const dir = storeDir(t);
    const store = await openTestStore(t, dir, byHand);
    const last = await fillFirstSegment(store, SEGMENT_BYTES);
    await store.append([message('t', 0, last, { body: Buffer.alloc(60_000, 4) })]);
    t.equal(await hooks(store).runRetention(Date.now() + LONG_AGO_MS), 1, 'segment A deleted');

    // SIGKILL before a checkpoint: the queue's entries were still in memory, and A is gone
    const crashed = storeDir(t);
    cpSync(dir, crashed, { recursive: true });
    const recovered = await openTestStore(t, crashed, { segmentBytes: SEGMENT_BYTES });
    t.same(recovered.queueOffsets('t', 0), { minQueueOffset: last, maxQueueOffset: last + 1 });
    const read = await recovered.readQueue('t', 0, last, { maxMessages: 10 });
    t.same(
      read.messages.map((m) => m.body),
      [Buffer.alloc(60_000, 4)],
    );
    const below = await recovered.readQueue('t', 0, 0, { maxMessages: 10 });
    t.equal(below.status, 'OFFSET_EXPIRED');
    t.equal(below.nextQueueOffset, last);
    // and it takes appends after it
    const [next] = await recovered.append([message('t', 0, last + 1)]);
    t.equal(next.queueOffset, last + 1);
  },
);

t.test(
  'a key lookup that meets a key-index file retention just deleted ends there and does not write the file back',
  async (t) => {
    const dir = storeDir(t);
    const store = await openTestStore(t, dir, {
      ...byHand,
      keyIndexSlots: 16,
      keyIndexEntriesPerFile: 8,
    });
    for (let i = 0; i < 200; i += 10) {
      await store.append(
        Array.from({ length: 10 }, (_, k) =>
          message('t', 0, i + k, { body: Buffer.alloc(1000, 1), keys: ['k'] }),
        ),
      );
    }
    const indexDir = join(dir, 'index');
    const before = readdirSync(indexDir);
    t.ok(before.length > 3, 'several key-index files');
    // a lookup under way (newest first), then retention deletes the old segments and the
    // key-index files below them
    const index = (store as unknown as { keyIndex: { candidates: KeyCandidates } }).keyIndex;
    const lookup = index.candidates('t', 'k', 0);
    t.equal((await lookup.next()).done, false);
    t.ok((await hooks(store).runRetention(Date.now() + LONG_AGO_MS)) > 0);
    const left = readdirSync(indexDir);
    t.ok(left.length < before.length, 'retention deleted key-index files');
    let more = 0;
    for (;;) {
      const step = await lookup.next();
      if (step.done === true) break;
      more++;
    }
    t.ok(more < 200, 'the lookup ended at the deleted files');
    t.same(readdirSync(indexDir), left, 'no deleted file came back');
  },
);

type KeyCandidates = (topic: string, key: string, minLogOffset: number) => AsyncGenerator<number>;
