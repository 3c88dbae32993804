// The store checkpoint: up to which logOffset the derived files (consume queues, key index) are
// written and fdatasynced. Recovery re-dispatches from there. Written atomically (temp, fsync,
// rename, directory fsync); a missing or damaged checkpoint reads as 0, i.e. rebuild everything.
//
// Layout (big-endian, 32 bytes): magic u32 'WCKP' | version u8 | 3 × u8 0
//   | dispatchedLogOffset u64 | writtenAtMs u64 | 4 × u8 0 | crc32c u32 (of bytes 0..28)
import { crc32c } from '@node-rs/crc32';
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from './file-io.js';
import { readUInt64, writeUInt64 } from './record.js';

const MAGIC = 0x57434b50;
const VERSION = 1;
const BYTES = 32;
export const CHECKPOINT_FILE = 'checkpoint';

export interface Checkpoint {
  dispatchedLogOffset: number;
  writtenAtMs: number;
}

export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const buf = Buffer.alloc(BYTES);
  buf.writeUInt32BE(MAGIC, 0);
  buf[4] = VERSION;
  writeUInt64(buf, checkpoint.dispatchedLogOffset, 8);
  writeUInt64(buf, checkpoint.writtenAtMs, 16);
  buf.writeUInt32BE(crc32c(buf.subarray(0, 28)), 28);
  return buf;
}

export function decodeCheckpoint(buf: Buffer): Checkpoint | null {
  if (buf.length !== BYTES || buf.readUInt32BE(0) !== MAGIC || buf[4] !== VERSION) return null;
  if (crc32c(buf.subarray(0, 28)) !== buf.readUInt32BE(28)) return null;
  return { dispatchedLogOffset: readUInt64(buf, 8), writtenAtMs: readUInt64(buf, 16) };
}

export async function readCheckpoint(dir: string): Promise<Checkpoint | null> {
  const buf = await readFileIfExists(join(dir, CHECKPOINT_FILE));
  return buf === null ? null : decodeCheckpoint(buf);
}

export function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  return writeFileAtomic(join(dir, CHECKPOINT_FILE), encodeCheckpoint(checkpoint));
}
