// One consume queue: the entries of a (topic, queueId), 24 bytes each, in segment files of
// `segmentEntries` entries named by their first queueOffset, so queueOffset → file and position is
// arithmetic. An entry is written at (queueOffset - fileStart) * 24, so writing it again is
// idempotent. Invariants: entries below maxQueueOffset are written; store time never decreases
// along the queue (binary search by time); minQueueOffset is the first entry whose record the log
// still holds.
//
// The entry layout is consume-queue-entry.ts's; reads through the page cache are
// consume-queue-pages.ts's. This file owns the write side (memory tail, writes in flight, failed
// writes kept for the checkpoint), the queue's offsets, searches, recovery and expiry.
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  CQ_ENTRY_BYTES,
  TOPIC_FILE,
  entryLogOffset,
  entrySize,
  entryStoreTimestampMs,
  readEntry,
} from './consume-queue-entry.js';
import type { ConsumeQueueEntry } from './consume-queue-entry.js';
import { ConsumeQueuePages } from './consume-queue-pages.js';
import type { FileCache } from './file-cache.js';
import {
  fdatasync,
  ftruncate,
  parseOffsetFileName,
  pread,
  readFileIfExists,
  pwrite,
} from './file-io.js';
import type { QueuePageCache } from './queue-page-cache.js';
import { PAGE_ENTRIES } from './queue-page-cache.js';

/** Entries a queue buffers in memory before writing them (3 KiB). */
const TAIL_ENTRIES = 128;
/** Writes of one queue in flight before dispatch waits for the oldest. */
const MAX_WRITES_IN_FLIGHT = 4;
/** Bytes of entries whose write failed kept in memory (for a write again) before dispatch fails. */
const MAX_FAILED_BYTES = 4 * 1024 * 1024;

export class ConsumeQueue {
  readonly dir: string;
  /** Start queueOffsets of the files on disk, ascending. */
  private starts: number[] = [];
  private minOffset = 0;
  /** Entries written (readable): the queue's visible end. */
  private maxOffset = 0;
  /** Next queueOffset to assign at append (≥ maxOffset: the rest is being made durable). */
  private nextOffset = 0;
  private dirReady = false;
  /** Entries dispatched but not yet written: tailCount entries from tailFrom. */
  private tail: Buffer | null = null;
  private tailFrom = 0;
  private tailCount = 0;
  /** Entries being written, ascending and contiguous: served from memory until they and every
   *  write before them completed (so what is not in memory below maxQueueOffset is on disk). */
  private inflight: { from: number; count: number; buf: Buffer; done: boolean }[] = [];
  /** Writes in flight (not awaited by dispatch: a checkpoint or a deletion waits for them). */
  private readonly writes = new Set<Promise<void>>();
  /** Writes that failed (ENOSPC, EIO): their entries stay served from memory (in `inflight`)
   *  and are written again by the next checkpoint, which does not pass them until they are. */
  private failed: { from: number; count: number; buf: Buffer; done: boolean }[] = [];
  private failedBytes = 0;
  private lastWriteError: Error | null = null;
  private dirReadying: Promise<void> | null = null;
  private readonly pages: ConsumeQueuePages;

  constructor(
    readonly topicDir: string,
    readonly topic: string,
    readonly queueId: number,
    readonly segmentEntries: number,
    private readonly cache: FileCache,
    pageCache: QueuePageCache,
  ) {
    this.dir = join(topicDir, String(queueId));
    this.pages = new ConsumeQueuePages(this.dir, segmentEntries, cache, pageCache);
  }

  /** Start queueOffsets of the files on disk, ascending. */
  get fileStarts(): readonly number[] {
    return this.starts;
  }

  /** The first entry whose record the log still holds. */
  get minQueueOffset(): number {
    return this.minOffset;
  }

  /** Entries dispatched (readable): the queue's visible end. */
  get maxQueueOffset(): number {
    return this.maxOffset;
  }

  /** The queueOffset the next append gets (at or past maxQueueOffset). */
  get nextQueueOffset(): number {
    return this.nextOffset;
  }

  /** Hands out the next queueOffset to an append (synchronously: assignment order = log order). */
  assignQueueOffset(): number {
    return this.nextOffset++;
  }

  /** Entries below `maxQueueOffset` are dispatched: they become readable. */
  markDispatched(maxQueueOffset: number): void {
    if (maxQueueOffset > this.maxOffset) this.maxOffset = maxQueueOffset;
    if (this.nextOffset < this.maxOffset) this.nextOffset = this.maxOffset;
  }

  /** Takes back the offsets handed to appends that never became durable (refused rounds whose
   *  records were cut from the log): the next append continues at the visible end. */
  reclaimUnwrittenOffsets(): void {
    this.nextOffset = this.maxOffset;
  }

  /** Moves minQueueOffset past entries whose records retention deleted (the log now starts at
   *  `logMinOffset`); resolves to the new minQueueOffset. */
  async advanceMinTo(logMinOffset: number): Promise<number> {
    this.minOffset = await this.searchByLogOffset(logMinOffset, this.minOffset, this.maxOffset);
    return this.minOffset;
  }

  /**
   * Recovery: the log's first record of this queue is at `queueOffset`, past the entries written
   * (retention deleted the records between after the last checkpoint, and the crash took their
   * entries before they were written): the queue starts there, with nothing below it to read.
   * Returns how many entries it skipped.
   */
  startAt(queueOffset: number): number {
    if (queueOffset <= this.maxOffset) return 0;
    const skipped = queueOffset - this.maxOffset;
    this.minOffset = queueOffset;
    this.maxOffset = queueOffset;
    if (this.nextOffset < queueOffset) this.nextOffset = queueOffset;
    return skipped;
  }

  /** Lists the files of an existing queue directory. */
  async load(): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    this.starts = names
      .map(parseOffsetFileName)
      .filter((n): n is number => n !== null)
      .sort((a, b) => a - b);
    this.dirReady = true;
  }

  filePath(fileStart: number): string {
    return this.pages.filePath(fileStart);
  }

  private fileStartOf(queueOffset: number): number {
    return queueOffset - (queueOffset % this.segmentEntries);
  }

  /** Creates the queue directory and its TOPIC file once (writes in flight share it). */
  private ensureDir(dirty: Set<string>): Promise<void> {
    this.dirReadying ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const topicFile = join(this.topicDir, TOPIC_FILE);
      if ((await readFileIfExists(topicFile))?.toString('utf8') !== this.topic) {
        // Atomically (a reader never sees it half-written), per queue temp name (queues of one
        // topic may get here together); the checkpoint fsyncs it with the directory.
        const tmp = `${topicFile}.${this.queueId}.tmp`;
        await writeFile(tmp, this.topic);
        await rename(tmp, topicFile);
        dirty.add(topicFile);
      }
      // each new directory's entry is in its parent: the queue's, the topic's, consumequeue/'s
      dirty.add(this.dir);
      dirty.add(this.topicDir);
      dirty.add(dirname(this.topicDir));
      this.dirReady = true;
    })().finally(() => {
      this.dirReadying = null;
    });
    return this.dirReadying;
  }

  /** Writes consecutive entries starting at `firstQueueOffset`; records the files it dirtied. */
  private async write(
    firstQueueOffset: number,
    entries: Buffer,
    dirty: Set<string>,
  ): Promise<void> {
    // Files are listed now, in queue order, whatever order concurrent writes finish in.
    const end = firstQueueOffset + entries.length / CQ_ENTRY_BYTES;
    for (
      let start = this.fileStartOf(firstQueueOffset);
      start < end;
      start += this.segmentEntries
    ) {
      if (this.starts.length === 0 || this.starts[this.starts.length - 1] < start) {
        this.starts.push(start);
        dirty.add(this.dir);
      }
    }
    if (!this.dirReady) await this.ensureDir(dirty);
    let queueOffset = firstQueueOffset;
    let pos = 0;
    while (pos < entries.length) {
      const fileStart = this.fileStartOf(queueOffset);
      const count = Math.min(
        (entries.length - pos) / CQ_ENTRY_BYTES,
        fileStart + this.segmentEntries - queueOffset,
      );
      const path = this.filePath(fileStart);
      const part = entries.subarray(pos, pos + count * CQ_ENTRY_BYTES);
      await this.cache.with(path, (fd) =>
        pwrite(fd, part, (queueOffset - fileStart) * CQ_ENTRY_BYTES),
      );
      this.pages.noteWritten(queueOffset, part);
      dirty.add(path);
      queueOffset += count;
      pos += count * CQ_ENTRY_BYTES;
    }
  }

  /**
   * Starts writing entries from `firstQueueOffset` without waiting for it: they are served from
   * memory until written. Dispatch (and so append) does not wait for derived files; a failed
   * write fails the next dispatch and checkpoint, and its entries stay readable from memory.
   */
  private async startWrite(
    firstQueueOffset: number,
    entries: Buffer,
    dirty: Set<string>,
  ): Promise<void> {
    // Bounded: past a few writes in flight, wait for the oldest (a slow disk slows dispatch).
    while (this.writes.size >= MAX_WRITES_IN_FLIGHT) await Promise.race(this.writes);
    const item = {
      from: firstQueueOffset,
      count: entries.length / CQ_ENTRY_BYTES,
      buf: entries,
      done: false,
    };
    this.inflight.push(item);
    const writing = this.write(firstQueueOffset, entries, dirty).then(
      () => {
        item.done = true;
        this.dropWritten();
      },
      (err: unknown) => {
        // Never skipped: kept in memory and in `failed` until a checkpoint writes it again.
        this.lastWriteError = err instanceof Error ? err : new Error(String(err));
        this.failed.push(item);
        this.failedBytes += item.buf.length;
      },
    );
    this.writes.add(writing);
    void writing.then(() => this.writes.delete(writing));
  }

  private dropWritten(): void {
    while (this.inflight.length > 0 && this.inflight[0].done) this.inflight.shift();
  }

  /** Whether writes are in flight or failed ones wait to be written again. */
  get hasUnwritten(): boolean {
    return this.writes.size > 0 || this.failed.length > 0;
  }

  /** Waits for every write in flight; throws if one failed and was not written since. */
  async settle(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes);
    if (this.failed.length > 0)
      throw this.lastWriteError ?? new Error('consume-queue write failed');
  }

  /**
   * Waits for the writes in flight, then writes again every failed one (a checkpoint, before it
   * fdatasyncs): resolves when every entry handed to this queue is written, throws if one still
   * fails (the checkpoint then does not move past it; the entries stay readable from memory).
   */
  async writeOut(dirty: Set<string>): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes);
    while (this.failed.length > 0) {
      const item = this.failed[0];
      await this.write(item.from, item.buf, dirty);
      this.failed.shift();
      this.failedBytes -= item.buf.length;
      item.done = true;
      this.dropWritten();
    }
    this.lastWriteError = null;
  }

  /**
   * Buffers consecutive entries from `firstQueueOffset` in the in-memory tail, writing the tail out
   * when it is full or would not continue (entries are derived: only a checkpoint needs them on
   * disk, and the tail saves a write per queue per group-commit round).
   */
  async add(firstQueueOffset: number, entries: Buffer, dirty: Set<string>): Promise<void> {
    // Bounded memory: past this many bytes of unwritten entries the dispatch fails (and with it
    // the store, which then reopens and rebuilds the queue from the commit log).
    if (this.failedBytes > MAX_FAILED_BYTES) {
      throw this.lastWriteError ?? new Error('consume-queue writes failed');
    }
    let queueOffset = firstQueueOffset;
    let pos = 0;
    while (pos < entries.length) {
      if (
        this.tailCount > 0 &&
        (queueOffset !== this.tailFrom + this.tailCount ||
          this.tailCount === TAIL_ENTRIES ||
          this.fileStartOf(queueOffset) !== this.fileStartOf(this.tailFrom))
      ) {
        await this.flushTail(dirty);
      }
      const remaining = (entries.length - pos) / CQ_ENTRY_BYTES;
      if (this.tailCount === 0 && remaining >= TAIL_ENTRIES) {
        // A long run (a big round, recovery): straight to the file, no copy through the tail.
        const n = Math.min(
          remaining,
          this.fileStartOf(queueOffset) + this.segmentEntries - queueOffset,
        );
        await this.startWrite(queueOffset, entries.subarray(pos, pos + n * CQ_ENTRY_BYTES), dirty);
        queueOffset += n;
        pos += n * CQ_ENTRY_BYTES;
        continue;
      }
      if (this.tailCount === 0) {
        this.tailFrom = queueOffset;
        this.tail ??= Buffer.allocUnsafe(TAIL_ENTRIES * CQ_ENTRY_BYTES);
      }
      const fileEnd = this.fileStartOf(this.tailFrom) + this.segmentEntries;
      const n = Math.min(
        TAIL_ENTRIES - this.tailCount,
        fileEnd - queueOffset,
        (entries.length - pos) / CQ_ENTRY_BYTES,
      );
      entries.copy(this.tail!, this.tailCount * CQ_ENTRY_BYTES, pos, pos + n * CQ_ENTRY_BYTES);
      this.tailCount += n;
      queueOffset += n;
      pos += n * CQ_ENTRY_BYTES;
    }
  }

  /** Starts writing the buffered tail to its file (readable from memory until written). */
  async flushTail(dirty: Set<string>): Promise<void> {
    if (this.tailCount === 0 || this.tail === null) return;
    const from = this.tailFrom;
    const buf = this.tail.subarray(0, this.tailCount * CQ_ENTRY_BYTES);
    this.tail = null;
    this.tailCount = 0;
    await this.startWrite(from, buf, dirty);
  }

  /**
   * Reads `count` entries from `fromQueueOffset` (all below maxQueueOffset): buffered ones from
   * memory, the rest from the page cache, reading whole pages (up to what is written) on a miss,
   * or, for a point read (`readAhead` false) that misses, with one pread a file.
   */
  async readEntries(fromQueueOffset: number, count: number, readAhead = true): Promise<Buffer> {
    const regions = this.inflight.slice();
    if (this.tailCount > 0) {
      regions.push({
        from: this.tailFrom,
        count: this.tailCount,
        buf: this.tail!.subarray(0, this.tailCount * CQ_ENTRY_BYTES),
        done: false,
      });
    }
    let memoryFrom = Number.MAX_SAFE_INTEGER;
    for (const r of regions) memoryFrom = Math.min(memoryFrom, r.from);
    const end = fromQueueOffset + count;
    const buf = Buffer.allocUnsafe(count * CQ_ENTRY_BYTES);
    if (fromQueueOffset < memoryFrom) {
      const fileTo = Math.min(end, memoryFrom);
      if (this.pages.cacheEnabled) {
        // Entries below both ends are in the file and stay as they are: safe to read ahead.
        const writtenEnd = Math.min(memoryFrom, this.maxOffset);
        await this.pages.read(buf, fromQueueOffset, fileTo, readAhead ? writtenEnd : -1);
      } else {
        await this.pages.readFile(buf, 0, fromQueueOffset, fileTo - fromQueueOffset);
      }
    }
    for (const r of regions) {
      const lo = Math.max(r.from, fromQueueOffset);
      const hi = Math.min(r.from + r.count, end);
      if (lo < hi) {
        r.buf.copy(
          buf,
          (lo - fromQueueOffset) * CQ_ENTRY_BYTES,
          (lo - r.from) * CQ_ENTRY_BYTES,
          (hi - r.from) * CQ_ENTRY_BYTES,
        );
      }
    }
    return buf;
  }

  /** One entry (a point read: binary searches do not fill the page cache). */
  async entryAt(queueOffset: number): Promise<ConsumeQueueEntry> {
    return readEntry(await this.readEntries(queueOffset, 1, false), 0);
  }

  /** First queueOffset in [minQueueOffset, maxQueueOffset) whose store time is >= timestampMs. */
  searchByTime(timestampMs: number): Promise<number> {
    return this.search(
      this.minOffset,
      this.maxOffset,
      (entries, index) => entryStoreTimestampMs(entries, index) < timestampMs,
    );
  }

  /** First queueOffset in [from, to) whose entry's logOffset is >= logOffset (entries ascend). */
  searchByLogOffset(logOffset: number, from: number, to: number): Promise<number> {
    return this.search(from, to, (entries, index) => entryLogOffset(entries, index) < logOffset);
  }

  /**
   * First queueOffset in [lo, hi) whose entry is not `before` (which holds for a prefix): a
   * binary search by single entries down to a page's worth, then one read of those entries.
   */
  private async search(
    lo: number,
    hi: number,
    before: (entries: Buffer, index: number) => boolean,
  ): Promise<number> {
    while (hi - lo > PAGE_ENTRIES) {
      const mid = Math.floor((lo + hi) / 2);
      if (before(await this.readEntries(mid, 1, false), 0)) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= hi) return lo;
    const buf = await this.readEntries(lo, hi - lo, false);
    let a = 0;
    let b = hi - lo;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (before(buf, mid)) a = mid + 1;
      else b = mid;
    }
    return lo + a;
  }

  /**
   * Recovery: keeps the entries up to the last one that is known flushed and points below
   * `limitLogOffset` (entries past the checkpoint may be torn or hold zeros), drops the rest.
   */
  async recoverTail(limitLogOffset: number): Promise<void> {
    this.pages.drop();
    const pageEntries = 4096;
    while (this.starts.length > 0) {
      const fileStart = this.starts[this.starts.length - 1];
      const path = this.filePath(fileStart);
      let keep = -1;
      await this.cache.with(path, async (fd) => {
        const bytes = (await stat(path)).size;
        let count = Math.floor(bytes / CQ_ENTRY_BYTES);
        const page = Buffer.allocUnsafe(pageEntries * CQ_ENTRY_BYTES);
        while (count > 0 && keep < 0) {
          const first = Math.max(0, count - pageEntries);
          const n = count - first;
          await pread(fd, page, 0, n * CQ_ENTRY_BYTES, first * CQ_ENTRY_BYTES);
          for (let i = n - 1; i >= 0; i--) {
            if (entrySize(page, i) > 0 && entryLogOffset(page, i) < limitLogOffset) {
              keep = first + i;
              break;
            }
          }
          count = first;
        }
        if (keep >= 0 && bytes !== (keep + 1) * CQ_ENTRY_BYTES) {
          await ftruncate(fd, (keep + 1) * CQ_ENTRY_BYTES);
          await fdatasync(fd);
        }
      });
      if (keep >= 0) {
        this.maxOffset = fileStart + keep + 1;
        this.nextOffset = this.maxOffset;
        return;
      }
      await this.cache.forget(path);
      await rm(path, { force: true });
      this.starts.pop();
      this.maxOffset = fileStart;
      this.nextOffset = fileStart;
    }
  }

  /**
   * Deletes files wholly below the log's first logOffset and moves minQueueOffset to the first
   * entry whose record still exists. Returns the files deleted.
   */
  async expireBelow(logMinOffset: number): Promise<number> {
    let deleted = 0;
    while (this.starts.length > 1) {
      const next = this.starts[1];
      // The next file's first entry is below the log start: the whole first file is too.
      if (next >= this.maxOffset) break;
      // (a next file that starts at or below minQueueOffset: nothing in the first is live)
      if (next > this.minOffset && (await this.entryAt(next)).logOffset > logMinOffset) break;
      const path = this.filePath(this.starts[0]);
      await this.cache.forget(path);
      await rm(path, { force: true });
      this.starts.shift();
      deleted++;
    }
    if (deleted > 0) this.pages.drop(this.starts[0]);
    // Entries still only in the memory tail have no file yet: they are not below the log.
    const firstOnDisk = this.starts[0];
    const from = firstOnDisk === undefined ? this.minOffset : Math.max(this.minOffset, firstOnDisk);
    this.minOffset = await this.searchByLogOffset(logMinOffset, from, this.maxOffset);
    return deleted;
  }

  async deleteFiles(): Promise<void> {
    this.tail = null;
    this.tailCount = 0;
    // No write may land (or recreate a file) after the files are gone; its failure is moot.
    await this.settle().catch(() => undefined);
    this.failed = [];
    this.failedBytes = 0;
    this.inflight = [];
    this.pages.drop();
    for (const start of this.starts) await this.cache.forget(this.filePath(start));
    this.starts = [];
  }
}
