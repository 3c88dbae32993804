// Retention and the disk watermark. Retention deletes whole commit-log segments whose newest
// record is older than retentionMs (the segment file's mtime: its last write), never the active
// one, nor one at or above the owner's floor (a pending delayed message), nor one a write round
// has yet to finish writing or syncing; then it lets the derived files follow (consume-queue
// files below the log, min queue offsets, key-index files). The watermark checks free space with
// statfs on an interval and counts bytes appended since, so appends are refused with DiskFull
// before the disk fills, not after.
import { rm, stat, statfs } from 'node:fs/promises';
import type { FileCache } from './file-cache.js';
import { fsyncDir } from './file-io.js';
import type { SegmentList } from './segment-list.js';
import type { StoreLogger } from './types.js';

export interface RetentionHooks {
  /** Runs after segments were deleted: derived files follow the new log start. */
  afterDelete(minLogOffset: number): Promise<void>;
  /** The lowest logOffset still needed: its segment and later ones are kept. */
  floor?(): Promise<number>;
  /** End of the log's bytes written, synced and acknowledged (GroupCommit.settledLogOffset). */
  settled(): number;
}

export class Retention {
  deletedSegments = 0;

  constructor(
    private readonly list: SegmentList,
    private readonly cache: FileCache,
    private readonly retentionMs: number,
    private readonly hooks: RetentionHooks,
    private readonly logger?: StoreLogger,
  ) {}

  /** Deletes expired segments; returns how many. */
  async runOnce(nowMs = Date.now()): Promise<number> {
    let deleted = 0;
    const floor = (await this.hooks.floor?.()) ?? Number.POSITIVE_INFINITY;
    while (this.list.segments.length > 1) {
      const oldest = this.list.segments[0];
      let mtimeMs: number;
      try {
        mtimeMs = (await stat(oldest.path)).mtimeMs;
      } catch {
        mtimeMs = 0;
      }
      if (mtimeMs > nowMs - this.retentionMs) break;
      // expired, but it ends above the floor: it holds records the owner still needs
      if (this.list.segments[1].startLogOffset > floor) {
        this.logger?.warn(
          { floor, segment: oldest.startLogOffset },
          'retention keeps an expired segment: it holds records still needed (a pending delayed message)',
        );
        break;
      }
      // A roll places the next segment before the round that writes this one's last bytes (the
      // blank frame) and syncs it has finished: deleted now, that write or sync would find no
      // file. It goes once every byte below the next segment is settled.
      if (this.list.segments[1].startLogOffset > this.hooks.settled()) break;
      // Out of the list first, so no new read starts on it; reads in flight keep their descriptor.
      this.list.shift();
      await this.cache.forget(oldest.path);
      await rm(oldest.path, { force: true });
      deleted++;
    }
    if (deleted > 0) {
      await fsyncDir(this.list.dir);
      this.deletedSegments += deleted;
      this.logger?.info(
        { deleted, minLogOffset: this.list.minLogOffset },
        'retention deleted commit-log segments',
      );
      await this.hooks.afterDelete(this.list.minLogOffset);
    }
    return deleted;
  }
}

export class DiskWatermark {
  private freeBytesAtCheck = Number.MAX_SAFE_INTEGER;
  private bytesSinceCheck = 0;

  constructor(
    private readonly dir: string,
    readonly minFreeDiskBytes: number,
  ) {}

  async check(): Promise<void> {
    const s = await statfs(this.dir);
    this.freeBytesAtCheck = s.bavail * s.bsize;
    this.bytesSinceCheck = 0;
  }

  /** Estimated free bytes now. */
  get freeBytes(): number {
    return this.freeBytesAtCheck - this.bytesSinceCheck;
  }

  /** Whether an append of `bytes` would take free space below the watermark. */
  refuses(bytes: number): boolean {
    return this.freeBytesAtCheck - this.bytesSinceCheck - bytes < this.minFreeDiskBytes;
  }

  wrote(bytes: number): void {
    this.bytesSinceCheck += bytes;
  }
}
