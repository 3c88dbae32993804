// The checkpoint's bytes are frozen (a change is a disk-format change), and anything that is not
// a whole, current checkpoint reads as "no checkpoint", which makes recovery rebuild from the log.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKPOINT_FILE,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from '../../src/store/checkpoint.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/store-formats-v1.json', import.meta.url), 'utf8'),
) as { checkpoint: { value: { dispatchedLogOffset: number; writtenAtMs: number }; hex: string } };

t.test('a checkpoint encodes to the frozen golden bytes and decodes back', async (t) => {
  t.equal(encodeCheckpoint(golden.checkpoint.value).toString('hex'), golden.checkpoint.hex);
  t.same(decodeCheckpoint(Buffer.from(golden.checkpoint.hex, 'hex')), golden.checkpoint.value);
});

t.test('a damaged, truncated or future-version checkpoint reads as none', async (t) => {
  const good = Buffer.from(golden.checkpoint.hex, 'hex');
  const flipped = Buffer.from(good);
  flipped[12] ^= 0x01;
  t.equal(decodeCheckpoint(flipped), null, 'a flipped bit fails the CRC');
  t.equal(decodeCheckpoint(good.subarray(0, 31)), null, 'a short file');
  const future = Buffer.from(good);
  future[4] = 2;
  t.equal(decodeCheckpoint(future), null, 'a version this code does not know');
  const magic = Buffer.from(good);
  magic[0] = 0;
  t.equal(decodeCheckpoint(magic), null, 'not a checkpoint');
});

t.test('writeCheckpoint replaces the file; a missing file reads as none', async (t) => {
  const dir = t.testdir({});
  t.equal(await readCheckpoint(dir), null);
  await writeCheckpoint(dir, { dispatchedLogOffset: 10, writtenAtMs: 1 });
  await writeCheckpoint(dir, { dispatchedLogOffset: 20, writtenAtMs: 2 });
  t.same(await readCheckpoint(dir), { dispatchedLogOffset: 20, writtenAtMs: 2 });
  writeFileSync(join(dir, CHECKPOINT_FILE), 'garbage');
  t.equal(await readCheckpoint(dir), null);
});
