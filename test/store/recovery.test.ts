import t from 'tap';
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { openMessageStore } from '../../src/store/index.js';
import { SMALL, message, openTestStore, storeDir } from '../helpers/store.js';

function segmentFiles(dir: string): string[] {
  return readdirSync(join(dir, 'commitlog'))
    .filter((n) => /^\d{20}$/.test(n))
    .sort();
}

function big(i: number) {
  return message('t', 0, i, { keys: [`k${i}`], body: Buffer.alloc(500, `payload-${i}-`) });
}

async function fill(dir: string, count: number): Promise<void> {
  const store = await openMessageStore({ ...SMALL, dir });
  for (let i = 0; i < count; i += 10) {
    await store.append(Array.from({ length: 10 }, (_, k) => big(i + k)));
  }
  await store.close();
}

t.test(
  'a crash copy (abort marker, stale checkpoint) recovers every acknowledged record',
  async (t) => {
    const dir = storeDir(t);
    const crash = storeDir(t);
    const store = await openTestStore(t, dir, { checkpointIntervalMs: 60_000 });
    const acked = [];
    for (let i = 0; i < 300; i += 15) {
      acked.push(
        ...(await store.append(
          Array.from({ length: 15 }, (_, k) => message('t', (i + k) % 2, i + k)),
        )),
      );
    }
    // Copy the live directory: what a SIGKILL would leave (page cache included).
    cpSync(dir, crash, { recursive: true });
    const recovered = await openTestStore(t, crash);
    t.equal(recovered.recovery.cleanShutdown, false);
    t.ok(recovered.recovery.redispatchedRecords > 0, 're-dispatched past the checkpoint');
    t.same(recovered.queueOffsets('t', 0).maxQueueOffset, 150);
    t.same(recovered.queueOffsets('t', 1).maxQueueOffset, 150);
    for (const r of acked) t.not(await recovered.readMessage(r.logOffset), null);
  },
);

t.test('a torn tail is truncated and nothing half-written is visible', async (t) => {
  const dir = storeDir(t);
  await fill(dir, 200);
  const files = segmentFiles(dir);
  const last = join(dir, 'commitlog', files[files.length - 1]);
  const size = statSync(last).size;
  truncateSync(last, size - 30);
  writeFileSync(join(dir, 'abort'), '1');
  rmSync(join(dir, 'checkpoint'));
  const store = await openTestStore(t, dir);
  t.equal(store.recovery.cleanShutdown, false);
  t.ok(store.recovery.truncatedBytes > 0);
  t.equal(store.recovery.corruption, undefined);
  t.equal(store.queueOffsets('t', 0).maxQueueOffset, 199);
  const r = await store.readQueue('t', 0, 190, { maxMessages: 100 });
  t.equal(r.messages.length, 9);
  const more = await store.append([message('t', 0, 999)]);
  t.equal(more[0].queueOffset, 199, 'offsets continue densely');
});

t.test(
  'bytes flipped in the middle of a segment: damage reported, everything before kept, rest quarantined',
  async (t) => {
    const dir = storeDir(t);
    await fill(dir, 300);
    const files = segmentFiles(dir);
    t.ok(files.length >= 3);
    const victim = join(dir, 'commitlog', files[1]);
    const bytes = readFileSync(victim);
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = bytes[mid] ^ 0xff;
    writeFileSync(victim, bytes);
    rmSync(join(dir, 'checkpoint'));
    const store = await openTestStore(t, dir);
    const corruption = store.recovery.corruption;
    t.ok(corruption, 'corruption reported');
    t.ok(
      corruption!.logOffset > Number(files[1]) && corruption!.logOffset <= Number(files[1]) + mid,
    );
    t.ok(corruption!.quarantined.length >= 2, 'damaged tail and later segments kept aside');
    for (const path of corruption!.quarantined) t.ok(existsSync(path), path);
    const max = store.queueOffsets('t', 0).maxQueueOffset;
    t.ok(max > 0 && max < 300);
    let next = 0;
    while (next < max) {
      const r = await store.readQueue('t', 0, next, { maxMessages: 50 });
      for (const m of r.messages) {
        if (!m.body.equals(big(m.queueOffset).body)) t.fail(`record ${m.queueOffset}`);
      }
      next = r.nextQueueOffset;
    }
    t.equal((await store.queryByKey('t', `k${max - 1}`, 1)).length, 1);
    t.equal(
      (await store.queryByKey('t', 'k299', 1)).length,
      0,
      'no key entry for a quarantined record',
    );
  },
);

t.test('damage in the last segment is found on a clean restart too', async (t) => {
  const dir = storeDir(t);
  await fill(dir, 100);
  const files = segmentFiles(dir);
  const victim = join(dir, 'commitlog', files[files.length - 1]);
  const bytes = readFileSync(victim);
  bytes[600] = bytes[600] ^ 1;
  writeFileSync(victim, bytes);
  const store = await openTestStore(t, dir);
  t.ok(store.recovery.corruption);
  t.equal(store.recovery.cleanShutdown, true);
});

t.test('an unknown format version stops the open with UnsupportedFormat', async (t) => {
  const dir = storeDir(t);
  await fill(dir, 10);
  const first = join(dir, 'commitlog', segmentFiles(dir)[0]);
  const bytes = readFileSync(first);
  const size = bytes.readUInt32BE(0);
  bytes[8] = 9;
  bytes.writeUInt32BE(crc32c(bytes.subarray(8, size)), 4);
  writeFileSync(first, bytes);
  rmSync(join(dir, 'checkpoint'));
  await t.rejects(openMessageStore({ ...SMALL, dir }), { code: 'UnsupportedFormat' });
  t.equal(readFileSync(first).length, bytes.length, 'nothing truncated');
});

t.test('a record damaged after recovery is passed over and reported, never garbage', async (t) => {
  const dir = storeDir(t);
  await fill(dir, 300);
  const first = join(dir, 'commitlog', segmentFiles(dir)[0]);
  const bytes = readFileSync(first);
  bytes[200] = bytes[200] ^ 0x55; // inside the first record
  writeFileSync(first, bytes);
  const errors: object[] = [];
  const logger = {
    info: () => undefined,
    warn: () => undefined,
    error: (o: object) => errors.push(o),
  };
  const store = await openTestStore(t, dir, { readCacheBytes: 0, logger });
  const read = await store.readQueue('t', 0, 0, { maxMessages: 5 });
  t.same(
    read.messages.map((m) => m.queueOffset),
    [1, 2, 3, 4],
    'the queue goes on past the damaged message',
  );
  t.ok(
    read.messages.every((m, i) => m.body.equals(big(i + 1).body)),
    'the others intact',
  );
  t.equal(read.nextQueueOffset, 5);
  await store.readQueue('t', 0, 0, { maxMessages: 5 });
  t.equal(store.stats().corruptMessagesSkipped, 1, 'counted once');
  t.match(errors, [{ code: 'CorruptRecord', queueOffset: 0 }], 'reported once, naming it');
  const [damaged] = (await store.queueEntries('t', 0, 0, 1)).entries;
  await t.rejects(store.readMessage(damaged.logOffset), { code: 'CorruptRecord' }, 'by position');
});

t.test('consume-queue entries past the checkpoint are rebuilt from the log', async (t) => {
  const dir = storeDir(t);
  await fill(dir, 100);
  rmSync(join(dir, 'consumequeue'), { recursive: true });
  rmSync(join(dir, 'checkpoint'));
  const store = await openTestStore(t, dir);
  t.equal(store.recovery.redispatchedRecords, 100);
  t.same(store.queueOffsets('t', 0), { minQueueOffset: 0, maxQueueOffset: 100 });
  const r = await store.readQueue('t', 0, 50, { maxMessages: 1 });
  t.same(r.messages[0].body, big(50).body);
});

t.test(
  'consume queues deleted as a whole are rebuilt from the log, checkpoint or not',
  async (t) => {
    const dir = storeDir(t);
    await fill(dir, 100);
    rmSync(join(dir, 'consumequeue'), { recursive: true });
    const store = await openTestStore(t, dir);
    t.equal(store.recovery.redispatchedRecords, 100);
    t.same(store.queueOffsets('t', 0), { minQueueOffset: 0, maxQueueOffset: 100 });
    const r = await store.readQueue('t', 0, 99, { maxMessages: 1 });
    t.same(r.messages[0].body, big(99).body);
    const [appended] = await store.append([big(100)]);
    t.equal(appended.queueOffset, 100, 'the next message takes the next offset, not 0 again');
    // with the log's first segments gone to retention, the rebuilt queue keeps the offsets
    await store.append(Array.from({ length: 200 }, (_, i) => big(101 + i)));
    await store.close();
    const aged = await openTestStore(t, dir, { retentionMs: 60_000 });
    await (aged as unknown as Retention).runRetention(Date.now() + 120_000);
    t.ok(aged.queueOffsets('t', 0).minQueueOffset > 0, 'retention deleted the first records');
    await aged.close();
    rmSync(join(dir, 'consumequeue'), { recursive: true });
    const rebuilt = await openTestStore(t, dir);
    t.equal(rebuilt.queueOffsets('t', 0).maxQueueOffset, 301);
    const read = await rebuilt.readQueue('t', 0, 250, { maxMessages: 1 });
    t.same(read.messages[0].body, big(250).body, 'offset 250 is still message 250');
  },
);

interface Retention {
  runRetention(nowMs?: number): Promise<number>;
}

t.test('queues whose entries were only in memory at the crash come back whole', async (t) => {
  const dir = storeDir(t);
  const crash = storeDir(t);
  const store = await openTestStore(t, dir, { checkpointIntervalMs: 60_000 });
  await store.append(Array.from({ length: 12 }, (_, i) => message('fresh', i % 3, i)));
  cpSync(dir, crash, { recursive: true });
  const recovered = await openTestStore(t, crash);
  for (let q = 0; q < 3; q++) {
    t.same(recovered.queueOffsets('fresh', q), { minQueueOffset: 0, maxQueueOffset: 4 });
    const r = await recovered.readQueue('fresh', q, 0, { maxMessages: 10 });
    t.equal(r.status, 'FOUND');
    t.equal(r.messages.length, 4);
  }
});

t.test(
  'recovery reads records larger than its carry-over room across chunk boundaries',
  async (t) => {
    const dir = storeDir(t);
    const store = await openMessageStore({ ...SMALL, dir, segmentBytes: 64 * 1024 * 1024 });
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(3_000_000 + i * 1000, i + 1));
    for (const body of bodies) await store.append([message('big', 0, 0, { body })]);
    await store.append([message('big', 0, 1)]);
    await store.close();
    rmSync(join(dir, 'checkpoint'));
    writeFileSync(join(dir, 'abort'), '1');
    const again = await openTestStore(t, dir);
    t.equal(again.recovery.redispatchedRecords, 9);
    t.equal(again.recovery.truncatedBytes, 0);
    const r = await again.readQueue('big', 0, 0, { maxMessages: 20 });
    t.equal(r.messages.length, 9);
    for (let i = 0; i < 8; i++) t.ok(r.messages[i].body.equals(bodies[i]), `record ${i}`);
  },
);

t.test('a log that ends below its checkpoint says durable records are gone', async (t) => {
  const dir = storeDir(t);
  await fill(dir, 300); // several 64 KiB segments, checkpointed at close
  const files = segmentFiles(dir);
  t.ok(files.length > 2);
  const newest = join(dir, 'commitlog', files[files.length - 1]);
  const endBefore = Number(files[files.length - 1]) + statSync(newest).size;
  // what some file systems leave of the newest segment after a crash: nothing
  truncateSync(newest, 0);
  const errors: { obj: Record<string, unknown>; msg: string }[] = [];
  const logger = {
    info: () => undefined,
    warn: () => undefined,
    error: (obj: object, msg?: string) =>
      errors.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }),
  };
  const store = await openTestStore(t, dir, { logger });
  const said = errors.find((e) => /ends below its checkpoint/.test(e.msg));
  t.ok(said, 'an error line, not a quiet trim');
  t.equal(said?.obj.logEndOffset, store.recovery.logEndOffset);
  t.ok(Number(said?.obj.lostBytes) > 0);
  const [next] = await store.append([message('t', 0, 9999)]);
  t.ok(next.logOffset >= endBefore, 'a new record never takes a lost one’s log position');
  await store.close();
  const again = await openTestStore(t, dir);
  t.not(await again.readMessage(next.logOffset), null, 'and it is read back after a restart');
});
