// One segment file of a frame log, named by its 20-digit zero-padded start logOffset. A segment
// holds frames from its start until a blank frame, its capacity, or the log end. Reads and writes
// go through the shared FileCache, so a segment holds no descriptor of its own.
import { join } from 'node:path';
import type { FileCache } from './file-cache.js';
import { offsetFileName, pread } from './file-io.js';

export class Segment {
  readonly path: string;
  /** Whether the file exists on disk (the writer creates it on its first write). */
  created: boolean;

  constructor(
    dir: string,
    readonly startLogOffset: number,
    created: boolean,
  ) {
    this.path = join(dir, offsetFileName(startLogOffset));
    this.created = created;
  }

  get fileName(): string {
    return offsetFileName(this.startLogOffset);
  }

  /** Reads bytes at `logOffset` (inside this segment); returns the count read (short at the end). */
  read(
    cache: FileCache,
    buf: Buffer,
    bufOffset: number,
    length: number,
    logOffset: number,
  ): Promise<number> {
    return cache.with(
      this.path,
      (fd) => pread(fd, buf, bufOffset, length, logOffset - this.startLogOffset),
      false,
    );
  }
}
