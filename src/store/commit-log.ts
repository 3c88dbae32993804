// A frame log on disk: ordered segments, frame placement, group commit and recovery bundled.
// The message store's commit log and the state journal are two instances. Invariant: bytes below
// groupCommit.writtenLogOffset are in the files; frames are placed synchronously (placement order
// is write order), so a reader never needs a lock.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileCache } from './file-cache.js';
import { fdatasync, fsyncDir, ftruncate } from './file-io.js';
import type { CommitRequest, GroupCommitOptions } from './group-commit.js';
import { GroupCommit } from './group-commit.js';
import type { LogRecoveryOptions, LogRecoveryResult } from './recovery.js';
import { recoverLog } from './recovery.js';
import { SegmentList } from './segment-list.js';

export interface CommitLogOptions<R extends CommitRequest>
  extends
    Omit<GroupCommitOptions<R>, 'cache'>,
    Omit<LogRecoveryOptions, 'name' | 'cache' | 'logger' | 'quarantineDir'> {
  dir: string;
  segmentBytes: number;
  cache: FileCache;
}

export class CommitLog<R extends CommitRequest = CommitRequest> {
  private constructor(
    readonly list: SegmentList,
    readonly groupCommit: GroupCommit<R>,
    private readonly cache: FileCache,
  ) {}

  /** Recovers the log in `options.dir` (see recovery.ts), then accepts appends. */
  static async open<R extends CommitRequest>(
    options: CommitLogOptions<R>,
  ): Promise<{ log: CommitLog<R>; recovery: LogRecoveryResult }> {
    await mkdir(options.dir, { recursive: true });
    const list = new SegmentList(options.dir, options.segmentBytes);
    const recovery = await recoverLog(list, {
      ...options,
      quarantineDir: join(options.dir, '..', 'quarantine'),
    });
    const groupCommit = new GroupCommit<R>(options, recovery.endLogOffset);
    groupCommit.start();
    return { log: new CommitLog(list, groupCommit, options.cache), recovery };
  }

  get endLogOffset(): number {
    return this.list.endLogOffset;
  }

  get minLogOffset(): number {
    return this.list.minLogOffset;
  }

  /** Reads bytes at `logOffset` within its segment; returns the count read (0 if none there). */
  async read(buf: Buffer, bufOffset: number, length: number, logOffset: number): Promise<number> {
    const segment = this.list.find(logOffset);
    if (segment === undefined || !segment.created) return 0;
    return segment.read(this.cache, buf, bufOffset, length, logOffset);
  }

  /** The logOffset where the segment holding `logOffset` ends, if a later segment exists. */
  segmentEnd(logOffset: number): number | undefined {
    const segment = this.list.find(logOffset);
    return segment === undefined ? undefined : this.list.nextStart(segment);
  }

  /**
   * After a write refused by a full or read-only disk: waits for the writer to stop, cuts the
   * files back to the end of what was acknowledged (bytes of refused rounds are garbage: a later
   * record must never be followed by a stale one that passes its CRC) and takes appends again
   * from there. Resolves false when the failure is not resumable (EIO: reopen); throws when the
   * cut itself fails (still read-only): call again later.
   */
  async resume(beforeResume?: () => void): Promise<boolean> {
    const gc = this.groupCommit;
    if (!gc.resumable) return false;
    await gc.drain();
    const acked = gc.acknowledgedLogOffset;
    const segments = this.list.segments;
    let removed = false;
    while (segments.length > 0 && segments[segments.length - 1].startLogOffset >= acked) {
      const segment = segments[segments.length - 1];
      await this.cache.forget(segment.path);
      await rm(segment.path, { force: true });
      segments.pop();
      removed = true;
    }
    if (removed) await fsyncDir(this.list.dir);
    const last = segments[segments.length - 1];
    if (last !== undefined && last.created) {
      await this.cache.with(
        last.path,
        async (fd) => {
          await ftruncate(fd, acked - last.startLogOffset);
          await fdatasync(fd);
        },
        false,
      );
    }
    this.list.endLogOffset = acked;
    // In the same tick as appends are taken again: nothing may be placed in between.
    beforeResume?.();
    gc.clearFailure();
    return true;
  }

  close(): Promise<void> {
    return this.groupCommit.close();
  }
}
