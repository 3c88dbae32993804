// A frame log on disk: ordered segments, frame placement, group commit and recovery bundled.
// The message store's commit log and the state journal are two instances. Invariant: bytes below
// groupCommit.writtenLogOffset are in the files; frames are placed synchronously (placement order
// is write order), so a reader never needs a lock.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileCache } from './file-cache.js';
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

  close(): Promise<void> {
    return this.groupCommit.close();
  }
}
