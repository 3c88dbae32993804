// A consume-queue entry's 24 bytes are frozen: queue files written by one version are read by the
// next, and an entry's position in its file is arithmetic on its queueOffset.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  CQ_ENTRY_BYTES,
  decodeTopicDir,
  entryLogOffset,
  entrySize,
  entryStoreTimestampMs,
  entryTagHash,
  readEntry,
  topicDirName,
  writeEntry,
} from '../../src/store/consume-queue-entry.js';
import type { ConsumeQueueEntry } from '../../src/store/consume-queue-entry.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/store-formats-v1.json', import.meta.url), 'utf8'),
) as { consumeQueueEntry: { value: ConsumeQueueEntry; hex: string } };

t.test('an entry encodes to the frozen golden bytes and decodes back', async (t) => {
  const { value, hex } = golden.consumeQueueEntry;
  const buf = Buffer.alloc(CQ_ENTRY_BYTES * 2);
  writeEntry(
    buf,
    CQ_ENTRY_BYTES,
    value.logOffset,
    value.size,
    value.tagHash,
    value.storeTimestampMs,
  );
  t.equal(buf.subarray(CQ_ENTRY_BYTES).toString('hex'), hex);
  t.equal(buf.subarray(0, CQ_ENTRY_BYTES).toString('hex'), '00'.repeat(CQ_ENTRY_BYTES));
  t.same(readEntry(Buffer.from(hex, 'hex'), 0), value);
});

t.test('topic directory names are file-system safe and reversible', async (t) => {
  for (const topic of ['orders', 'tenant1%inst1%orders', 'a/b', 'ü-ß', '..']) {
    const dir = topicDirName(topic);
    t.match(dir, /^(?:[A-Za-z0-9_-]|%[0-9a-f]{2})+$/, `${topic} → ${dir}`);
    t.equal(decodeTopicDir(dir), topic);
  }
  const long = 'x'.repeat(200);
  t.match(topicDirName(long), /^h-[0-9a-f]{64}$/, 'a long name is hashed');
  t.equal(decodeTopicDir(topicDirName(long)), null, 'a hashed name is not reversible');
});

t.test('field reads of entry i agree with readEntry at i * 24', async (t) => {
  const buf = Buffer.alloc(CQ_ENTRY_BYTES * 3);
  const values: ConsumeQueueEntry[] = [
    { logOffset: 0, size: 0, tagHash: 0, storeTimestampMs: 0 },
    { logOffset: 2 ** 53 - 1, size: 0xffffffff, tagHash: 1, storeTimestampMs: 2 ** 41 },
    golden.consumeQueueEntry.value,
  ];
  values.forEach((v, i) =>
    writeEntry(buf, i * CQ_ENTRY_BYTES, v.logOffset, v.size, v.tagHash, v.storeTimestampMs),
  );
  values.forEach((v, i) => {
    t.same(readEntry(buf, i * CQ_ENTRY_BYTES), v);
    t.same(
      {
        logOffset: entryLogOffset(buf, i),
        size: entrySize(buf, i),
        tagHash: entryTagHash(buf, i),
        storeTimestampMs: entryStoreTimestampMs(buf, i),
      },
      v,
      `entry ${i}`,
    );
  });
  t.throws(() => entryLogOffset(buf, 3), RangeError, 'past the buffer: an error, not garbage');
});
