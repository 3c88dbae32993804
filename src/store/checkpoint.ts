// The store checkpoint: up to which logOffset the derived files (consume queues, key index) are
// written and fdatasynced. Recovery re-dispatches from there. Written atomically (temp, fsync,
// rename, directory fsync); a missing or damaged checkpoint reads as 0, i.e. rebuild everything.
// `Checkpointer` takes one: derived files written and fdatasynced, then the position recorded.
//
// Layout (big-endian, 32 bytes): magic u32 'WCKP' | version u8 | 3 × u8 0
//   | dispatchedLogOffset u64 | writtenAtMs u64 | 4 × u8 0 | crc32c u32 (of bytes 0..28)
import { crc32c } from '@node-rs/crc32';
import { join } from 'node:path';
import { WharfError } from '../errors.js';
import type { Dispatcher } from './dispatcher.js';
import type { FileCache } from './file-cache.js';
import { readFileIfExists, writeFileAtomic } from './file-io.js';
import type { KeyIndex } from './key-index.js';
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

/** Takes checkpoints of the store in `dir`; run one at a time (the store's serial queue). */
export class Checkpointer {
  private lastLogOffset = -1;
  private syncFailure: Error | null = null;

  constructor(
    private readonly dir: string,
    private readonly dispatcher: Dispatcher,
    private readonly keyIndex: KeyIndex,
    private readonly cache: FileCache,
  ) {}

  /** A failed fdatasync of a derived file: no checkpoint may pass it until a reopen. */
  get failure(): Error | null {
    return this.syncFailure;
  }

  /** fdatasyncs what was dispatched, then records the position (nothing new: nothing done). */
  async run(): Promise<void> {
    const dispatchedLogOffset = this.dispatcher.dispatchedLogOffset;
    if (dispatchedLogOffset === this.lastLogOffset) return;
    if (this.syncFailure !== null) {
      throw new WharfError('IoError', 'a derived file failed its fdatasync; reopen to rebuild', {
        cause: this.syncFailure,
      });
    }
    // A failed write of entries throws here: they stay in memory, the next checkpoint writes
    // them again.
    await this.dispatcher.flushQueues();
    try {
      await this.dispatcher.syncWritten(this.cache);
    } catch (err) {
      // After a failed fdatasync the kernel may have dropped the pages (fsyncgate): a later one
      // succeeding proves nothing. No checkpoint passes this point until a reopen rebuilds the
      // derived files from the commit log.
      this.syncFailure ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    }
    await this.keyIndex.flush();
    await writeCheckpoint(this.dir, { dispatchedLogOffset, writtenAtMs: Date.now() });
    this.lastLogOffset = dispatchedLogOffset;
  }
}
