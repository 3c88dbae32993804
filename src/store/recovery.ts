// Recovery of a frame log (commit log or journal): reads forward from the segment holding the
// start position, checks every frame's length, CRC, version and position, and stops at the first
// that fails. A torn tail (nothing valid after it) is truncated; a damaged frame with valid frames
// after it is corruption: everything before it is kept, the rest is moved into quarantine/ (not
// deleted) for an operator to salvage, and it is reported loudly. A frame of an unknown version
// with a valid CRC stops the open with UnsupportedFormat rather than destroying newer data.
import { copyFile, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { WharfError } from '../errors.js';
import type { FileCache } from './file-cache.js';
import { fdatasync, fsyncDir, ftruncate, offsetFileName } from './file-io.js';
import type { FrameKind } from './record.js';
import {
  FRAME_HEADER_BYTES,
  checkFrame,
  frameLength,
  frameLogOffset,
  isBlankFrame,
} from './record.js';
import type { Segment } from './segment.js';
import type { SegmentList } from './segment-list.js';
import type { StoreLogger } from './types.js';

export interface LogRecoveryResult {
  endLogOffset: number;
  truncatedBytes: number;
  corruption?: { logOffset: number; reason: string; quarantined: string[] };
  framesScanned: number;
}

export interface LogRecoveryOptions {
  name: string;
  cache: FileCache;
  /** Verify from the start of the segment holding this logOffset. */
  fromLogOffset: number;
  /** Start at fromLogOffset itself (a frame boundary) rather than at its segment's start. */
  exactStart?: boolean;
  quarantineDir: string;
  /** Each valid non-blank frame, in order; `buf` is reused: copy what you keep. */
  onFrame(buf: Buffer, pos: number, length: number, logOffset: number, kind: FrameKind): void;
  /** After each read chunk: everything below `logOffset` was passed to onFrame. */
  afterChunk?(logOffset: number): Promise<void>;
  chunkBytes?: number;
  /** Frames longer than this are damage, not data. */
  maxFrameBytes?: number;
  logger?: StoreLogger;
}

interface Stop {
  segmentIndex: number;
  logOffset: number;
  reason: string;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Whether a valid frame starts at exactly `logOffset` of `segment`. */
async function validFrameAt(
  cache: FileCache,
  segment: Segment,
  logOffset: number,
  size: number,
): Promise<boolean> {
  const available = size - (logOffset - segment.startLogOffset);
  if (available < FRAME_HEADER_BYTES) return false;
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  await segment.read(cache, head, 0, FRAME_HEADER_BYTES, logOffset);
  const want = isBlankFrame(head, 0) ? FRAME_HEADER_BYTES : frameLength(head, 0);
  if (want < FRAME_HEADER_BYTES || want > available) return false;
  const buf = Buffer.allocUnsafe(want);
  await segment.read(cache, buf, 0, want, logOffset);
  return checkFrame(buf, 0, want, logOffset).status === 'ok';
}

/** Looks for any valid frame after a damaged position (in its segment, or a later segment). */
async function validDataAfter(
  cache: FileCache,
  segments: Segment[],
  sizes: number[],
  stop: Stop,
): Promise<boolean> {
  const segment = segments[stop.segmentIndex];
  const size = sizes[stop.segmentIndex];
  // Resynchronise byte by byte: a frame records its own logOffset, so candidates are rare.
  const chunkBytes = 4 * 1024 * 1024;
  const buf = Buffer.allocUnsafe(chunkBytes + 20);
  let from = stop.logOffset + 1;
  const end = segment.startLogOffset + size;
  while (from < end - 20) {
    const n = await segment.read(cache, buf, 0, Math.min(chunkBytes + 20, end - from), from);
    for (let i = 0; i + 20 <= n; i++) {
      if (
        buf.readUInt32BE(i + 16) === (from + i) % 0x1_0000_0000 &&
        frameLogOffset(buf, i) === from + i
      ) {
        if (await validFrameAt(cache, segment, from + i, size)) return true;
      }
    }
    from += chunkBytes;
  }
  for (let i = stop.segmentIndex + 1; i < segments.length; i++) {
    if (await validFrameAt(cache, segments[i], segments[i].startLogOffset, sizes[i])) return true;
  }
  return false;
}

export async function recoverLog(
  list: SegmentList,
  options: LogRecoveryOptions,
): Promise<LogRecoveryResult> {
  const { cache } = options;
  await list.load();
  const segments = list.segments;
  const sizes: number[] = [];
  for (const s of segments) sizes.push(await fileSize(s.path));
  if (segments.length === 0) {
    list.endLogOffset = 0;
    return { endLogOffset: 0, truncatedBytes: 0, framesScanned: 0 };
  }
  const first = list.find(options.fromLogOffset) ?? segments[0];
  let index = segments.indexOf(first);
  // The journal starts exactly at its snapshot: what lies before is covered by it.
  let logOffset =
    options.exactStart === true
      ? Math.max(first.startLogOffset, options.fromLogOffset)
      : first.startLogOffset;
  const firstIndex = index;
  const chunkBytes = options.chunkBytes ?? 8 * 1024 * 1024;
  let head = 1024 * 1024;
  let cur = Buffer.allocUnsafe(head + chunkBytes);
  let next = Buffer.allocUnsafe(head + chunkBytes);
  const maxFrameBytes = options.maxFrameBytes ?? 256 * 1024 * 1024;
  let framesScanned = 0;
  let stop: Stop | null = null;

  scan: while (index < segments.length) {
    const segment = segments[index];
    const size = sizes[index];
    if (index > firstIndex && segment.startLogOffset !== logOffset) {
      stop = {
        segmentIndex: index - 1,
        logOffset,
        reason: 'segment does not start where the previous ended',
      };
      break;
    }
    const end = segment.startLogOffset + size;
    // Double-buffered: the next chunk is read while this one is checked. A frame cut by the
    // chunk end is carried over in front of the next chunk (room: `head` bytes).
    let data = cur;
    let start = head;
    let n =
      logOffset < end
        ? await segment.read(cache, data, head, Math.min(chunkBytes, end - logOffset), logOffset)
        : 0;
    while (n > 0) {
      const nextLogOffset = logOffset + n;
      const nextWant = Math.min(chunkBytes, end - nextLogOffset);
      const spare = data === cur ? next : cur;
      const prefetch =
        nextWant > 0
          ? segment.read(cache, spare, head, nextWant, nextLogOffset)
          : Promise.resolve(0);
      let p = 0;
      let needBytes = 0;
      while (p < n) {
        const at = logOffset + p;
        const check = checkFrame(data, start + p, start + n, at);
        if (check.status === 'ok') {
          if (check.kind === 'blank') {
            await prefetch;
            logOffset = at + check.length;
            await options.afterChunk?.(at);
            index++;
            continue scan;
          }
          options.onFrame(data, start + p, check.length, at, check.kind);
          framesScanned++;
          p += check.length;
          continue;
        }
        if (check.status === 'incomplete') {
          if (at + check.needBytes > end) {
            stop = {
              segmentIndex: index,
              logOffset: at,
              reason: 'torn frame at the end of the segment',
            };
          } else if (check.needBytes > maxFrameBytes) {
            stop = {
              segmentIndex: index,
              logOffset: at,
              reason: `implausible frame length ${check.needBytes}`,
            };
          }
          needBytes = check.needBytes;
          break;
        }
        if (check.status === 'unsupported') {
          await prefetch;
          throw new WharfError(
            'UnsupportedFormat',
            `${options.name}: frame at logOffset ${at} has format version ${check.version}`,
            { details: { logOffset: at, version: check.version } },
          );
        }
        stop = { segmentIndex: index, logOffset: at, reason: check.reason };
        break;
      }
      const got = await prefetch;
      if (stop !== null) break scan;
      logOffset += p;
      await options.afterChunk?.(logOffset);
      const leftover = n - p;
      if (leftover > head - FRAME_HEADER_BYTES || needBytes > head + chunkBytes) {
        // A frame larger than the carry-over room: grow both buffers, re-read what follows it.
        head = Math.max(leftover, needBytes) * 2;
        const grown = Buffer.allocUnsafe(head + chunkBytes);
        data.copy(grown, head - leftover, start + p, start + n);
        cur = grown;
        next = Buffer.allocUnsafe(head + chunkBytes);
        data = cur;
        start = head - leftover;
        const reread = await segment.read(
          cache,
          data,
          head,
          Math.min(chunkBytes, end - nextLogOffset),
          nextLogOffset,
        );
        n = leftover + reread;
        continue;
      }
      data.copy(spare, head - leftover, start + p, start + n);
      data = spare;
      start = head - leftover;
      n = leftover + got;
    }
    // The segment's bytes ended on a frame boundary without a blank frame: the next segment, if
    // any, must start right here (a segment filled to its exact capacity).
    index++;
  }

  if (stop === null) {
    list.endLogOffset = logOffset;
    return { endLogOffset: logOffset, truncatedBytes: 0, framesScanned };
  }

  await options.afterChunk?.(stop.logOffset);
  const damaged = stop;
  const segment = segments[damaged.segmentIndex];
  const keepBytes = damaged.logOffset - segment.startLogOffset;
  const corrupt = await validDataAfter(cache, segments, sizes, damaged);
  let truncatedBytes = sizes[damaged.segmentIndex] - keepBytes;
  const quarantined: string[] = [];
  const later = segments.slice(damaged.segmentIndex + 1);
  for (let i = damaged.segmentIndex + 1; i < segments.length; i++) truncatedBytes += sizes[i];
  if (corrupt) {
    await mkdir(options.quarantineDir, { recursive: true });
    const tail = join(options.quarantineDir, `${offsetFileName(damaged.logOffset)}.damaged`);
    await copyRange(segment.path, keepBytes, tail);
    quarantined.push(tail);
    for (const s of later) {
      const target = join(options.quarantineDir, s.fileName);
      await cache.forget(s.path);
      await rename(s.path, target);
      quarantined.push(target);
    }
    await fsyncDir(options.quarantineDir);
    options.logger?.error(
      {
        code: 'CorruptRecord',
        log: options.name,
        logOffset: damaged.logOffset,
        reason: damaged.reason,
        quarantined,
      },
      `${options.name} corruption: valid data follows a damaged record; kept everything before it and moved the rest to quarantine`,
    );
  } else {
    for (const s of later) {
      await cache.forget(s.path);
      await rm(s.path, { force: true });
    }
    if (truncatedBytes > 0) {
      options.logger?.warn(
        { log: options.name, logOffset: damaged.logOffset, truncatedBytes, reason: damaged.reason },
        'truncated a torn log tail',
      );
    }
  }
  await cache.with(segment.path, async (fd) => {
    await ftruncate(fd, keepBytes);
    await fdatasync(fd);
  });
  segments.length = damaged.segmentIndex + 1;
  await fsyncDir(list.dir);
  list.endLogOffset = damaged.logOffset;
  return {
    endLogOffset: damaged.logOffset,
    truncatedBytes,
    framesScanned,
    ...(corrupt
      ? { corruption: { logOffset: damaged.logOffset, reason: damaged.reason, quarantined } }
      : {}),
  };
}

async function copyRange(path: string, from: number, target: string): Promise<void> {
  if (from === 0) {
    await copyFile(path, target);
  } else {
    const src = await open(path, 'r');
    const dst = await open(target, 'w');
    try {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      let pos = from;
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        await dst.write(buf, 0, bytesRead);
        pos += bytesRead;
      }
      await dst.sync();
    } finally {
      await src.close();
      await dst.close();
    }
  }
}
