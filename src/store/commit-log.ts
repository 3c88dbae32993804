// A frame log on disk: ordered segments, frame placement, group commit and recovery bundled.
// The message store's commit log and the state journal are two instances. `append` is the one way
// frames get in: placed, encoded into staging buffers and submitted in the same synchronous call.
// Invariant: bytes below groupCommit.writtenLogOffset are in the files; frames are placed
// synchronously (placement order is write order), so a reader never needs a lock.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileCache } from './file-cache.js';
import { fdatasync, fsyncDir, ftruncate, pwrite } from './file-io.js';
import { BLANK_FRAME_BYTES, encodeBlank } from './record.js';
import type { CommitRequest, GroupCommitOptions } from './group-commit.js';
import { GroupCommit } from './group-commit.js';
import type { LogRecoveryOptions, LogRecoveryResult } from './recovery.js';
import { recoverLog } from './recovery.js';
import type { LogChunk } from './segment-list.js';
import { SegmentList } from './segment-list.js';
import type { Segment } from './segment.js';

/** Size of the buffers appends encode their frames into. */
const STAGING_BYTES = 1024 * 1024;

/** Encodes the frames of one append where the log placed them. */
export interface FrameWriter {
  /** Writes frame `index` of the append (`size` bytes, at `logOffset`) into buffer[pos]. */
  writeFrame(index: number, buffer: Buffer, pos: number, size: number, logOffset: number): void;
}

export interface CommitLogOptions<R extends CommitRequest>
  extends
    Omit<GroupCommitOptions<R>, 'cache'>,
    Omit<LogRecoveryOptions, 'name' | 'cache' | 'logger' | 'quarantineDir'> {
  dir: string;
  segmentBytes: number;
  cache: FileCache;
}

export class CommitLog<R extends CommitRequest = CommitRequest> {
  private staging = Buffer.allocUnsafeSlow(0);
  private stagingUsed = 0;
  /** Scratch for the blank frame of a roll (reused: appends are synchronous). */
  private readonly blanks: LogChunk[] = [];

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

  /** Throws the error an append of `bytes` must get now, if any (call before `append`). */
  checkAccept(bytes: number): void {
    this.groupCommit.checkAccept(bytes);
  }

  /**
   * Appends `count` frames of sizes[0..count) as one request: places them at the log's end in
   * order, has `writer` encode each into a staging buffer (one buffer per run of frames in one
   * segment, normally all; a roll's blank frame goes between runs, so chunks stay in log order),
   * sets them as `request.chunks` and submits the request to the group commit. The caller checked
   * `checkAccept(request.bytes)`; nothing here allocates per frame.
   */
  append(request: R, sizes: ArrayLike<number>, count: number, writer: FrameWriter): void {
    const list = this.list;
    const blanks = this.blanks;
    const chunks = request.chunks;
    let runSegment: Segment | null = null;
    let runFrom = 0;
    let runLogOffset = 0;
    let runBytes = 0;
    for (let i = 0; i < count; i++) {
      const size = sizes[i];
      const placed = list.place(size, blanks);
      if (placed.segment !== runSegment) {
        if (runSegment !== null) {
          this.encodeRun(writer, sizes, runFrom, i, runLogOffset, runBytes, runSegment, chunks);
        }
        if (blanks.length > 0) {
          chunks.push(blanks[0]);
          blanks.length = 0;
        }
        runSegment = placed.segment;
        runFrom = i;
        runLogOffset = placed.logOffset;
        runBytes = 0;
      }
      runBytes += size;
    }
    if (runSegment !== null) {
      this.encodeRun(writer, sizes, runFrom, count, runLogOffset, runBytes, runSegment, chunks);
    }
    this.groupCommit.submit(request);
  }

  private encodeRun(
    writer: FrameWriter,
    sizes: ArrayLike<number>,
    from: number,
    to: number,
    logOffset: number,
    bytes: number,
    segment: Segment,
    chunks: LogChunk[],
  ): void {
    const buffer = this.stage(bytes);
    let pos = 0;
    for (let k = from; k < to; k++) {
      const size = sizes[k];
      writer.writeFrame(k, buffer, pos, size, logOffset + pos);
      pos += size;
    }
    chunks.push({ logOffset, segment, buffer });
  }

  /**
   * Room for `bytes` of frames in the current staging buffer: frames of consecutive appends sit
   * side by side, so a group-commit round writes them as one iovec and no append allocates. A
   * staging buffer is never reused (its views may be held by caches and readers).
   */
  private stage(bytes: number): Buffer {
    if (bytes > STAGING_BYTES / 4) return Buffer.allocUnsafe(bytes);
    if (this.stagingUsed + bytes > this.staging.length) {
      this.staging = Buffer.allocUnsafeSlow(STAGING_BYTES);
      this.stagingUsed = 0;
    }
    const view = this.staging.subarray(this.stagingUsed, this.stagingUsed + bytes);
    this.stagingUsed += bytes;
    return view;
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

  /** The start of the segment holding `logOffset`, or -1 when it is below the first one. */
  segmentStart(logOffset: number): number {
    const segment = this.list.find(logOffset);
    return segment === undefined ? -1 : segment.startLogOffset;
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

  /**
   * Ends the active segment with a blank frame where the log now ends, so the next frame starts
   * a new segment. Recovery calls it when it cut the log back (a torn or damaged tail, a segment
   * emptied): the positions the lost frames held in the segment are not taken again, so a new
   * message never gets a lost one's log position (its message id). Positions of a segment lost
   * whole (its file removed) are taken again: segments follow one another without gaps.
   */
  async sealActiveSegment(): Promise<void> {
    const list = this.list;
    const segment = list.active;
    if (segment === undefined || !segment.created) return;
    const end = list.endLogOffset;
    const used = end - segment.startLogOffset;
    const room = list.segmentBytes - used;
    // full (the next frame starts a new segment anyway), or no room for a blank, which the
    // placement rule never leaves
    if (used < 0 || room < BLANK_FRAME_BYTES) return;
    const blank = Buffer.allocUnsafe(BLANK_FRAME_BYTES);
    encodeBlank(blank, 0, end, room);
    await this.cache.with(
      segment.path,
      async (fd) => {
        await pwrite(fd, blank, used);
        await fdatasync(fd);
      },
      false,
    );
    list.endLogOffset = end + room;
    this.groupCommit.resetEnd(end + room);
  }

  close(): Promise<void> {
    return this.groupCommit.close();
  }
}
