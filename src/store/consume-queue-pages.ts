// The read side of one consume queue's files: entries read through the shared page cache
// (queue-page-cache.ts) a whole page per pread with the next page read ahead, point reads straight
// from the file, and pages grown by the queue's own writes so a reader right behind the head never
// preads. Invariant: a page only ever holds entries already written to the file (which never
// change while the store runs); pages are dropped when their files are truncated or deleted.
import { join } from 'node:path';
import { CQ_ENTRY_BYTES } from './consume-queue-entry.js';
import type { FileCache } from './file-cache.js';
import { offsetFileName, pread } from './file-io.js';
import type { QueuePage, QueuePageCache } from './queue-page-cache.js';
import { PAGE_ENTRIES } from './queue-page-cache.js';

export class ConsumeQueuePages {
  /** This queue's pages in the shared page cache, by first queueOffset. */
  private readonly pages = new Map<number, QueuePage>();

  constructor(
    private readonly dir: string,
    private readonly segmentEntries: number,
    private readonly cache: FileCache,
    private readonly pageCache: QueuePageCache,
  ) {}

  get cacheEnabled(): boolean {
    return this.pageCache.enabled;
  }

  /** The file holding the entries from `fileStart` (a multiple of segmentEntries). */
  filePath(fileStart: number): string {
    return join(this.dir, offsetFileName(fileStart));
  }

  fileStartOf(queueOffset: number): number {
    return queueOffset - (queueOffset % this.segmentEntries);
  }

  /** The first queueOffset of the page holding `queueOffset`. */
  private pageStartOf(queueOffset: number): number {
    const fileStart = this.fileStartOf(queueOffset);
    return fileStart + Math.floor((queueOffset - fileStart) / PAGE_ENTRIES) * PAGE_ENTRIES;
  }

  private pageEndOf(pageStart: number): number {
    return Math.min(pageStart + PAGE_ENTRIES, this.fileStartOf(pageStart) + this.segmentEntries);
  }

  /**
   * Fills `buf` with entries [from, to) through the page cache. A miss reads the page's missing
   * part up to `writtenEnd` (one pread) and keeps it; with `writtenEnd` -1 a miss reads only what
   * is asked, straight from the file.
   */
  async read(buf: Buffer, from: number, to: number, writtenEnd: number): Promise<void> {
    let queueOffset = from;
    while (queueOffset < to) {
      const pageStart = this.pageStartOf(queueOffset);
      const pageEnd = this.pageEndOf(pageStart);
      const hi = Math.min(to, pageEnd);
      const at = (queueOffset - from) * CQ_ENTRY_BYTES;
      let page = this.pages.get(pageStart);
      let valid = page === undefined ? 0 : page.count;
      if (valid >= hi - pageStart) {
        this.pageCache.hits++;
        this.pageCache.touch(page!);
      } else if (writtenEnd < hi) {
        this.pageCache.misses++;
        await this.readFile(buf, at, queueOffset, hi - queueOffset);
        queueOffset = hi;
        continue;
      } else {
        this.pageCache.misses++;
        if (page === undefined) {
          page = this.pageCache.create(this.pages, pageStart, pageEnd - pageStart, CQ_ENTRY_BYTES);
          valid = 0;
        }
        // A load in flight (read ahead) is waited for; if it failed, this read tries again.
        if (page.loading !== null) valid = Math.max(valid, await page.loading.catch(() => 0));
        if (valid < hi - pageStart) {
          valid = await this.loadPage(page, valid, Math.min(pageEnd, writtenEnd));
        }
      }
      const copyTo = Math.min(hi, pageStart + valid);
      if (copyTo > queueOffset) {
        page!.buf.copy(
          buf,
          at,
          (queueOffset - pageStart) * CQ_ENTRY_BYTES,
          (copyTo - pageStart) * CQ_ENTRY_BYTES,
        );
      }
      // A file shorter than the queue says (damage): zeros, which no record matches.
      if (copyTo < hi) {
        buf.fill(
          0,
          at + Math.max(0, copyTo - queueOffset) * CQ_ENTRY_BYTES,
          at + (hi - queueOffset) * CQ_ENTRY_BYTES,
        );
      }
      queueOffset = hi;
    }
    if (writtenEnd < 0) return;
    // A reader past half a page will want the next one: read it while this one is served.
    const lastStart = this.pageStartOf(to - 1);
    const lastEnd = this.pageEndOf(lastStart);
    if ((to - lastStart) * 2 < lastEnd - lastStart || lastEnd >= writtenEnd) return;
    if (this.pages.has(lastEnd)) return;
    const next = this.pageCache.create(
      this.pages,
      lastEnd,
      this.pageEndOf(lastEnd) - lastEnd,
      CQ_ENTRY_BYTES,
    );
    this.pageCache.prefetches++;
    void this.loadPage(next, 0, Math.min(this.pageEndOf(lastEnd), writtenEnd)).catch(
      () => undefined,
    );
  }

  /** Reads the page's entries [valid, readTo) from its file; resolves to the entries now valid
   *  (also to those waiting on `page.loading`). */
  private loadPage(page: QueuePage, valid: number, readTo: number): Promise<number> {
    const fileStart = this.fileStartOf(page.start);
    const want = (readTo - page.start - valid) * CQ_ENTRY_BYTES;
    const load = this.cache
      .with(
        this.filePath(fileStart),
        (fd) =>
          pread(
            fd,
            page.buf,
            valid * CQ_ENTRY_BYTES,
            want,
            (page.start - fileStart + valid) * CQ_ENTRY_BYTES,
          ),
        false,
      )
      .then((got) => {
        const now = valid + Math.floor(got / CQ_ENTRY_BYTES);
        if (!page.dropped && now > page.count) page.count = now;
        return now;
      });
    page.loading = load;
    const settled = () => {
      if (page.loading === load) page.loading = null;
    };
    void load.then(settled, settled);
    return load;
  }

  /**
   * Entries [first, first + n) were just written to the file: pages holding the entries right
   * before them grow, so a reader following the queue's head reads them from memory. A page is
   * started only when the page before it is cached (someone reads this queue through the cache).
   */
  noteWritten(first: number, entries: Buffer): void {
    if (this.pages.size === 0) return;
    const end = first + entries.length / CQ_ENTRY_BYTES;
    let queueOffset = first;
    while (queueOffset < end) {
      const pageStart = this.pageStartOf(queueOffset);
      const pageEnd = this.pageEndOf(pageStart);
      const hi = Math.min(end, pageEnd);
      let page = this.pages.get(pageStart);
      if (
        page === undefined &&
        queueOffset === pageStart &&
        pageStart > 0 &&
        this.pages.has(this.pageStartOf(pageStart - 1))
      ) {
        page = this.pageCache.create(this.pages, pageStart, pageEnd - pageStart, CQ_ENTRY_BYTES);
      }
      if (page !== undefined && page.count >= queueOffset - pageStart) {
        const valid = page.count;
        if (valid < hi - pageStart) {
          entries.copy(
            page.buf,
            valid * CQ_ENTRY_BYTES,
            (pageStart + valid - first) * CQ_ENTRY_BYTES,
            (hi - first) * CQ_ENTRY_BYTES,
          );
          page.count = hi - pageStart;
        }
      }
      queueOffset = hi;
    }
  }

  /** Drops this queue's cached pages that start below `below` (all by default). */
  drop(below = Number.MAX_SAFE_INTEGER): void {
    if (this.pages.size > 0) this.pageCache.dropAll(this.pages, (page) => page.start < below);
  }

  /** Reads `count` entries from `fromQueueOffset` straight from the files into buf[bufOffset];
   *  entries past a file's end read as zeros. */
  async readFile(
    buf: Buffer,
    bufOffset: number,
    fromQueueOffset: number,
    count: number,
  ): Promise<void> {
    let queueOffset = fromQueueOffset;
    let pos = bufOffset;
    const endPos = bufOffset + count * CQ_ENTRY_BYTES;
    while (pos < endPos) {
      const fileStart = this.fileStartOf(queueOffset);
      const n = Math.min(
        (endPos - pos) / CQ_ENTRY_BYTES,
        fileStart + this.segmentEntries - queueOffset,
      );
      const got = await this.cache.with(
        this.filePath(fileStart),
        (fd) => pread(fd, buf, pos, n * CQ_ENTRY_BYTES, (queueOffset - fileStart) * CQ_ENTRY_BYTES),
        false,
      );
      if (got < n * CQ_ENTRY_BYTES) buf.fill(0, pos + got, pos + n * CQ_ENTRY_BYTES);
      queueOffset += n;
      pos += n * CQ_ENTRY_BYTES;
    }
  }
}
