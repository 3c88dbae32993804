// The ordered segments of one frame log (commit log or journal) and the placement rule: a frame
// goes where the log ends unless it would not fit in the active segment, in which case a blank
// frame fills the rest of that segment and the frame starts the next one. Invariant: the bytes
// used in a segment are either its whole capacity or leave room for a blank frame, so a roll can
// always write its marker.
import { readdir } from 'node:fs/promises';
import { BLANK_FRAME_BYTES, encodeBlank } from './record.js';
import { parseOffsetFileName } from './file-io.js';
import { Segment } from './segment.js';

/** Bytes to write at a logOffset of a segment (records of one batch, or a blank frame). */
export interface LogChunk {
  logOffset: number;
  segment: Segment;
  buffer: Buffer;
}

export class SegmentList {
  readonly segments: Segment[] = [];
  /** Next logOffset to assign (the end of everything placed, written or not). */
  endLogOffset = 0;

  constructor(
    readonly dir: string,
    readonly segmentBytes: number,
  ) {}

  /** Lists the segment files of `dir` (created if missing), in order. */
  async load(): Promise<void> {
    const names = await readdir(this.dir);
    const starts = names
      .map(parseOffsetFileName)
      .filter((n): n is number => n !== null)
      .sort((a, b) => a - b);
    this.segments.length = 0;
    for (const start of starts) this.segments.push(new Segment(this.dir, start, true));
  }

  get minLogOffset(): number {
    return this.segments.length === 0 ? this.endLogOffset : this.segments[0].startLogOffset;
  }

  get active(): Segment | undefined {
    return this.segments[this.segments.length - 1];
  }

  /** The segment holding `logOffset`, or undefined when it is below the first one. */
  find(logOffset: number): Segment | undefined {
    const i = this.indexOf(logOffset);
    return i < 0 ? undefined : this.segments[i];
  }

  /** Index of the segment holding `logOffset`, or -1 when it is below the first one. */
  indexOf(logOffset: number): number {
    const segments = this.segments;
    let lo = 0;
    let hi = segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (segments[mid].startLogOffset <= logOffset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** The logOffset where the segment after `segment` starts, or undefined for the last one. */
  nextStart(segment: Segment): number | undefined {
    const i = this.indexOf(segment.startLogOffset);
    return i >= 0 && i + 1 < this.segments.length ? this.segments[i + 1].startLogOffset : undefined;
  }

  /**
   * Places a frame of `size` bytes (at most segmentBytes - BLANK_FRAME_BYTES) and returns its
   * logOffset and segment; pushes a blank chunk onto `blanks` when the active segment rolls.
   */
  place(size: number, blanks: LogChunk[]): { logOffset: number; segment: Segment } {
    let segment = this.active;
    if (segment === undefined || segment.startLogOffset > this.endLogOffset) {
      segment = this.addSegment(this.endLogOffset);
    }
    const used = this.endLogOffset - segment.startLogOffset;
    const room = this.segmentBytes - used;
    if (!(size === room || size <= room - BLANK_FRAME_BYTES)) {
      let nextStart = this.endLogOffset;
      if (room >= BLANK_FRAME_BYTES) {
        const buffer = Buffer.allocUnsafe(BLANK_FRAME_BYTES);
        encodeBlank(buffer, 0, this.endLogOffset, room);
        blanks.push({ logOffset: this.endLogOffset, segment, buffer });
        nextStart += room;
      }
      segment = this.addSegment(nextStart);
      this.endLogOffset = nextStart;
    }
    const logOffset = this.endLogOffset;
    this.endLogOffset += size;
    return { logOffset, segment };
  }

  private addSegment(startLogOffset: number): Segment {
    const segment = new Segment(this.dir, startLogOffset, false);
    this.segments.push(segment);
    return segment;
  }

  /** Drops the first segment from the list (its file is deleted by the caller). */
  shift(): Segment | undefined {
    return this.segments.shift();
  }
}
