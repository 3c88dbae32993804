// Defect 3 of #8: a full or read-only disk. On a tiny real tmpfs (skipped, with the reason, where
// mount is not permitted): a write refused with ENOSPC is a retriable refusal, the store says it
// is not writable, reads and the reserve go on, appends resume by themselves once space returns
// (no reopen, nothing acknowledged lost or duplicated), and a store opened on a full disk comes
// up read-only instead of failing.
import t from 'tap';
import fs from 'node:fs';
import { join } from 'node:path';
import {
  MIN_FREE_DISK_FLOOR_BYTES,
  openMessageStore,
  type MessageStore,
  type MessageStoreOptions,
} from '../../src/store/index.js';

import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';

const TOPIC = 'disk-full';

function message(i: number, padBytes = 0) {
  const body = Buffer.from(`body-${i}${'.'.repeat(padBytes)}`);
  return { topic: TOPIC, queueId: 0, body, bornTimestampMs: i };
}

async function readAll(store: MessageStore): Promise<string[]> {
  const read = await store.readQueue(TOPIC, 0, 0, { maxMessages: 10_000 });
  return read.messages.map((m) => m.body.toString());
}

const checkDisk = (store: MessageStore) =>
  (store as unknown as { checkDisk(): Promise<void> }).checkDisk();

const options = (dir: string): MessageStoreOptions => ({
  dir,
  minFreeDiskBytes: 0,
  segmentBytes: 1024 * 1024,
  journalSegmentBytes: 1024 * 1024,
  keyIndexSlots: 1024,
  keyIndexEntriesPerFile: 4096,
  // The watermark is measured only when the test says so: the disk fills behind its back, so the
  // commit log meets a real ENOSPC.
  diskCheckIntervalMs: 3_600_000,
  checkpointIntervalMs: 3_600_000,
});

t.test('WHARF_MIN_FREE_DISK_MB=0 keeps a floor', async (t) => {
  const dir = t.testdir();
  const store = await openMessageStore({ dir, minFreeDiskBytes: 0 });
  t.ok(MIN_FREE_DISK_FLOOR_BYTES >= 4 * 1024 * 1024, 'a few MiB at least');
  t.equal(store.health().writable, true);
  await store.close();
});

t.test('ENOSPC in the commit log: refused, then appends resume once space returns', async (t) => {
  const mnt = mountTmpfs(t, 48);
  if (mnt === null) return;
  const dir = join(mnt, 'store');
  const filler = join(mnt, 'filler');
  let store = await openMessageStore(options(dir));
  const expected: string[] = [];
  for (let i = 0; i < 20; i++) {
    await store.append([message(i)]);
    expected.push(`body-${i}`);
  }
  await store.journal.append([Buffer.from('before')]);

  fillDisk(filler);
  // Larger than the partly used page at the log's end: the write needs new pages.
  const refused = await store.append([message(1000, 100_000), message(1001, 100_000)]).then(
    () => null,
    (err: unknown) => err,
  );
  t.match(refused, { retriable: true }, 'a retriable refusal');
  t.match(refused, { code: /^(IoError|DiskFull)$/ });
  t.equal(store.health().writable, false, 'not writable');
  t.match(store.health().detail, /disk full or read-only|below the watermark/);
  await t.rejects(store.append([message(1002)]), { code: 'DiskFull', retriable: true });
  t.same(await readAll(store), expected, 'reads go on');
  await checkDisk(store);
  t.equal(store.health().writable, false, 'still full: still refused');

  fs.rmSync(filler);
  await checkDisk(store);
  t.equal(store.health().writable, true, 'writable again without a reopen');
  for (let i = 20; i < 40; i++) {
    await store.append([message(i)]);
    expected.push(`body-${i}`);
  }
  await store.journal.append([Buffer.from('after')]);
  t.same(await readAll(store), expected);
  await store.close();

  store = await openMessageStore(options(dir));
  t.same(await readAll(store), expected, 'after a reopen: every acknowledged one, once');
  t.same(store.queueOffsets(TOPIC, 0), { minQueueOffset: 0, maxQueueOffset: 40 });
  await store.close();
});

t.test('a store opened on a full disk comes up read-only', async (t) => {
  const mnt = mountTmpfs(t, 48);
  if (mnt === null) return;
  const dir = join(mnt, 'store');
  const filler = join(mnt, 'filler');
  let store = await openMessageStore(options(dir));
  const expected: string[] = [];
  for (let i = 0; i < 30; i++) {
    await store.append([message(i)]);
    expected.push(`body-${i}`);
  }
  // SIGKILL-like: no clean close is needed for the point; a clean one keeps the test simple.
  await store.close();

  fillDisk(filler);
  store = await openMessageStore(options(dir));
  t.equal(store.health().writable, false, 'read-only');
  t.same(await readAll(store), expected, 'every message readable');
  await t.rejects(store.append([message(99)]), { code: 'DiskFull', retriable: true });

  fs.rmSync(filler);
  await checkDisk(store);
  t.equal(store.health().writable, true);
  await store.append([message(30)]);
  expected.push('body-30');
  t.same(await readAll(store), expected);
  await store.close();
});
