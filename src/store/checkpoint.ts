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
import { eachLimited } from './each-limited.js';
import type { FileCache } from './file-cache.js';
import { fdatasync, fsyncDir, isNotFound, readFileIfExists, writeFileAtomic } from './file-io.js';
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

/** What a checkpoint's first step left for its second: the position its files are written up
 *  to, and the files to fdatasync before the position is recorded. */
export interface PreparedCheckpoint {
  dispatchedLogOffset: number;
  dirty: string[];
}

/** fdatasyncs of one checkpoint running at once: two of the thread pool's four threads, so a
 *  checkpoint of thousands of files does not sync them one by one, and the commit log's and the
 *  journal's fdatasyncs (and reads) find a thread free. */
const PARALLEL_SYNCS = 2;

/**
 * Takes checkpoints of the store in `dir`, in two steps: `prepare` writes the derived files out
 * and takes the list of files written (in the store's serial queue, beside dispatch), `complete`
 * fdatasyncs them and records the position — outside the serial queue, so publishes, whose
 * dispatch waits for that queue, do not wait for the syncs of every consume queue written since
 * the last checkpoint (thousands of files for a tenant spreading over many queues). Completes run
 * one at a time, in the order of their prepares: the recorded position never goes back.
 */
export class Checkpointer {
  /** The position of the last checkpoint recorded. */
  private lastLogOffset = -1;
  /** The position of the last prepare: nothing new past it, nothing to do. */
  private preparedLogOffset = -1;
  private syncFailure: Error | null = null;
  private completing: Promise<void> = Promise.resolve();

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

  /** Both steps at once (in the serial queue: at open and close, and on demand). */
  async run(): Promise<void> {
    let prepared = await this.prepare();
    if (prepared === null) {
      // what was dispatched is a checkpoint's still completing: this one is done once that one
      // is recorded — or, if it failed, this one tries again (or meets its sync failure)
      await this.completing;
      prepared = await this.prepare();
    }
    if (prepared !== null) await this.complete(prepared);
  }

  /** Writes what was dispatched out and takes the files to sync (null: nothing new). Run in the
   *  store's serial queue. */
  async prepare(): Promise<PreparedCheckpoint | null> {
    const dispatchedLogOffset = this.dispatcher.dispatchedLogOffset;
    if (dispatchedLogOffset === this.preparedLogOffset) return null;
    this.throwIfSyncFailed();
    // A failed write of entries throws here: they stay in memory, the next checkpoint writes
    // them again.
    await this.dispatcher.flushQueues();
    await this.keyIndex.flush();
    this.preparedLogOffset = dispatchedLogOffset;
    return { dispatchedLogOffset, dirty: this.dispatcher.takeDirty() };
  }

  /** fdatasyncs a prepared checkpoint's files, then records its position; after the completes
   *  before it. */
  complete(prepared: PreparedCheckpoint): Promise<void> {
    const run = this.completing.then(() => this.syncAndRecord(prepared));
    this.completing = run.catch(() => undefined);
    return run;
  }

  private async syncAndRecord({ dispatchedLogOffset, dirty }: PreparedCheckpoint): Promise<void> {
    try {
      // a checkpoint prepared while the one before it was syncing: that one's failure holds it
      // back too (the files it could not sync are not among this one's)
      this.throwIfSyncFailed();
      try {
        await this.syncAll(dirty);
      } catch (err) {
        // After a failed fdatasync the kernel may have dropped the pages (fsyncgate): a later
        // one succeeding proves nothing. No checkpoint passes this point until a reopen
        // rebuilds the derived files from the commit log.
        this.syncFailure ??= err instanceof Error ? err : new Error(String(err));
        throw err;
      }
      await writeCheckpoint(this.dir, { dispatchedLogOffset, writtenAtMs: Date.now() });
      this.lastLogOffset = dispatchedLogOffset;
    } catch (err) {
      // not recorded (a sync failed, or the checkpoint file could not be written): the next
      // checkpoint tries again, even with nothing dispatched meanwhile
      this.preparedLogOffset = this.lastLogOffset;
      throw err;
    }
  }

  private throwIfSyncFailed(): void {
    if (this.syncFailure === null) return;
    throw new WharfError('IoError', 'a derived file failed its fdatasync; reopen to rebuild', {
      cause: this.syncFailure,
    });
  }

  /** fdatasyncs `paths`, PARALLEL_SYNCS at a time; on a failure the paths not synced are listed
   *  as written again, and the failure is thrown. A file deleted meanwhile needs no sync. */
  private async syncAll(paths: readonly string[]): Promise<void> {
    const unsynced = new Set(paths);
    try {
      await eachLimited(paths, PARALLEL_SYNCS, async (path) => {
        try {
          if (path.endsWith('/') || !/\d{20}$/.test(path)) await fsyncDir(path);
          else await this.cache.with(path, (fd) => fdatasync(fd), false);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        unsynced.delete(path);
      });
    } catch (err) {
      this.dispatcher.markWritten(unsynced);
      throw err;
    }
  }
}
