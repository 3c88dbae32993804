// The store facade (RocketMQ's DefaultMessageStore): opens (recovery first), appends through the
// commit log's group commit, dispatches durable records into consume queues and the key index,
// serves reads, checkpoints derived files, runs retention and the disk watermark, and owns the
// state journal. Invariants: offsets are assigned synchronously inside append() (assignment order
// = write order); a message is readable and announced only once durable under the flush policy;
// all derived-file work (dispatch, checkpoint, retention, topic deletion) runs one task at a time.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WharfError } from '../errors.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { CommitLog } from './commit-log.js';
import type { ConsumeQueue } from './consume-queue.js';
import { CQ_ENTRY_BYTES } from './consume-queue.js';
import type { DirLock } from './dir-lock.js';
import { lockDir } from './dir-lock.js';
import { Dispatcher } from './dispatcher.js';
import { FileCache } from './file-cache.js';
import {
  closeFile,
  fdatasync,
  fsyncDir,
  isDiskFullOrReadOnly,
  isNotFound,
  openFile,
} from './file-io.js';
import type { CommitRequest } from './group-commit.js';
import { KeyIndex } from './key-index.js';
import type { LogBlock } from './log-block-cache.js';
import { LogBlockCache } from './log-block-cache.js';
import type { MessageStore, MessageStoreOptions, StoreHealth } from './message-store-api.js';
import { QueuePageCache } from './queue-page-cache.js';
import { QueueTable } from './queue-table.js';
import { ReadCache } from './read-cache.js';
import type { DecodeHints, DispatchRecord } from './record.js';
import {
  BLANK_FRAME_BYTES,
  FLAG_END_OF_SEGMENT,
  MESSAGE_HEADER_BYTES,
  checkFrame,
  decodeCheckedMessage,
  decodeHints,
  encodeMessage,
  hashBytes,
  measureMessage,
  readDispatchFields,
  readUInt64,
  recordTagEquals,
} from './record.js';
import { DiskWatermark, Retention } from './retention.js';
import type { LogChunk } from './segment-list.js';
import type { Segment } from './segment.js';
import { FileStateJournal } from './state-journal.js';
import type {
  AppendMessage,
  AppendResult,
  QueueOffsets,
  ReadQueueOptions,
  ReadQueueResult,
  RecoveryReport,
  StoreLogger,
  StoredMessage,
} from './types.js';

const ABORT_FILE = 'abort';
/** The least free space kept below any configured watermark (WHARF_MIN_FREE_DISK_MB=0 too). */
export const MIN_FREE_DISK_FLOOR_BYTES = 16 * 1024 * 1024;
/** Largest coalesced read of adjacent records (one pread). */
const MAX_COALESCED_READ_BYTES = 2 * 1024 * 1024;
/** Size of the buffers appends encode their records into. */
const STAGING_BYTES = 1024 * 1024;
/** Largest run of other records read along between two wanted ones. */
const MAX_COALESCED_GAP_BYTES = 64 * 1024;
/** Entries examined per readQueue call when a tag filter skips messages. */
const MAX_FILTER_SCAN_ENTRIES = 4096;

const EMPTY = Buffer.alloc(0);
/** Most blocks fetched ahead after one read. */
const MAX_PREFETCH_BLOCKS = 4;

/** Records of one readQueue fetched together: from the cache of recent records, a read-ahead
 *  block, two blocks (a record across their boundary) or their own pread. */
interface ReadSpan {
  /** candidates[from, to) are in this span. */
  from: number;
  to: number;
  /** logOffset of buffer[0]. */
  base: number;
  buffer: Buffer;
  source: 'memory' | 'block' | 'straddle' | 'read';
  blockStart?: number;
  nextStart?: number;
  /** End of the last record wanted from the block(s). */
  needEnd?: number;
}

interface StoreRequest extends CommitRequest {
  records: DispatchRecord[];
}

interface ResolvedOptions {
  dir: string;
  segmentBytes: number;
  flushPolicy: 'sync' | 'async';
  asyncFlushIntervalMs: number;
  maxPendingAppendBytes: number;
  maxRecordBytes: number;
  consumeQueueSegmentEntries: number;
  retentionMs: number;
  minFreeDiskBytes: number;
  readCacheBytes: number;
  consumeQueueCacheBytes: number;
  readAheadCacheBytes: number;
  readAheadBlockBytes: number;
  maxOpenFiles: number;
  checkpointIntervalMs: number;
  retentionCheckIntervalMs: number;
  diskCheckIntervalMs: number;
  keyIndexSlots: number;
  keyIndexEntriesPerFile: number;
  journalSegmentBytes: number;
  logger: StoreLogger | undefined;
}

function resolveOptions(o: MessageStoreOptions): ResolvedOptions {
  const segmentBytes = o.segmentBytes ?? 1024 * 1024 * 1024;
  return {
    dir: o.dir,
    segmentBytes,
    flushPolicy: o.flushPolicy ?? 'sync',
    asyncFlushIntervalMs: o.asyncFlushIntervalMs ?? 200,
    maxPendingAppendBytes: o.maxPendingAppendBytes ?? 64 * 1024 * 1024,
    // A record must fit in a segment with room for the blank frame of the roll before it.
    maxRecordBytes: Math.min(
      o.maxRecordBytes ?? 4 * 1024 * 1024 + 64 * 1024,
      segmentBytes - BLANK_FRAME_BYTES,
    ),
    consumeQueueSegmentEntries: o.consumeQueueSegmentEntries ?? 300_000,
    retentionMs: o.retentionMs ?? 72 * 3600 * 1000,
    // Never below the floor, whatever was configured: the reserve is what the journal (receipts,
    // acks), the consume queues and the checkpoint write into while publishes are refused, and
    // what keeps the commit log from ever meeting ENOSPC.
    minFreeDiskBytes: Math.max(o.minFreeDiskBytes ?? 1024 * 1024 * 1024, MIN_FREE_DISK_FLOOR_BYTES),
    readCacheBytes: o.readCacheBytes ?? 64 * 1024 * 1024,
    consumeQueueCacheBytes: Math.max(0, o.consumeQueueCacheBytes ?? 16 * 1024 * 1024),
    readAheadCacheBytes: Math.max(0, o.readAheadCacheBytes ?? 32 * 1024 * 1024),
    readAheadBlockBytes: Math.max(4096, Math.floor(o.readAheadBlockBytes ?? 1024 * 1024)),
    maxOpenFiles: Math.max(8, o.maxOpenFiles ?? 256),
    checkpointIntervalMs: o.checkpointIntervalMs ?? 1000,
    retentionCheckIntervalMs: o.retentionCheckIntervalMs ?? 60_000,
    diskCheckIntervalMs: o.diskCheckIntervalMs ?? 1000,
    keyIndexSlots: o.keyIndexSlots ?? 1_000_000,
    keyIndexEntriesPerFile: o.keyIndexEntriesPerFile ?? 4_000_000,
    journalSegmentBytes: o.journalSegmentBytes ?? 64 * 1024 * 1024,
    logger: o.logger,
  };
}

/** Runs tasks one at a time, in order (dispatch rounds, checkpoints, retention, deletions). */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Opens the store in `options.dir`: runs recovery, then serves. */
export async function openMessageStore(options: MessageStoreOptions): Promise<MessageStore> {
  return DefaultMessageStore.open(options);
}

class DefaultMessageStore implements MessageStore {
  recovery!: RecoveryReport;
  journal!: FileStateJournal;
  private log!: CommitLog<StoreRequest>;
  private keyIndex!: KeyIndex;
  private dispatcher!: Dispatcher;
  private retention!: Retention;
  private readonly cache: FileCache;
  private readonly queues: QueueTable;
  private readonly pageCache: QueuePageCache;
  /** Read-ahead blocks of the log for queue readers; null when turned off. */
  private blocks: LogBlockCache | null = null;
  private readonly readCache: ReadCache;
  private readonly serial = new SerialQueue();
  private readonly disk: DiskWatermark;
  private lastStoreTimestampMs = 0;
  private lastCheckpointLogOffset = -1;
  private closing: Promise<void> | null = null;
  private timers: NodeJS.Timeout[] = [];
  private appendedMessages = 0;
  private staging = Buffer.allocUnsafeSlow(0);
  private stagingUsed = 0;
  /** Held from before the first read of the directory until every descriptor is closed. */
  private dirLock: DirLock | null = null;
  /** A failed fdatasync of a derived file: no checkpoint may pass it (see checkpoint()). */
  private checkpointFailure: Error | null = null;

  private constructor(private readonly o: ResolvedOptions) {
    this.cache = new FileCache(o.maxOpenFiles);
    this.pageCache = new QueuePageCache(o.consumeQueueCacheBytes);
    this.queues = new QueueTable(
      o.dir,
      join(o.dir, 'consumequeue'),
      o.consumeQueueSegmentEntries,
      this.cache,
      this.pageCache,
    );
    this.readCache = new ReadCache(o.readCacheBytes);
    this.disk = new DiskWatermark(o.dir, o.minFreeDiskBytes);
  }

  static async open(options: MessageStoreOptions): Promise<DefaultMessageStore> {
    const store = new DefaultMessageStore(resolveOptions(options));
    try {
      await store.recover();
    } catch (err) {
      await store.cache.closeAll();
      store.dirLock?.release();
      throw err;
    }
    return store;
  }

  private async recover(): Promise<void> {
    const o = this.o;
    const startedMs = performance.now();
    await mkdir(o.dir, { recursive: true });
    // Before anything is read: a second process on this directory would append from the same
    // offsets and hand out the same message ids (commit log, consume queues, journal: all here).
    this.dirLock = lockDir(o.dir);
    const abortPath = join(o.dir, ABORT_FILE);
    const crashed = await openFile(abortPath, false).then(
      async (fd) => {
        await closeFile(fd);
        return true;
      },
      (err: unknown) => {
        if (isNotFound(err)) return false;
        throw err;
      },
    );
    const checkpoint = await readCheckpoint(o.dir);
    const cqFrom = checkpoint?.dispatchedLogOffset ?? 0;
    await this.queues.load();
    const opened = await KeyIndex.open(
      join(o.dir, 'index'),
      o.keyIndexSlots,
      o.keyIndexEntriesPerFile,
      this.cache,
      o.logger,
    );
    this.keyIndex = opened.index;
    const indexFrom = opened.resumeLogOffset;
    // Entries past the checkpoint may be torn or hold zeros: drop them, re-dispatch from the log.
    for (const queue of this.queues.all()) await queue.recoverTail(cqFrom);
    this.dispatcher = new Dispatcher(this.queues, this.keyIndex, 0, o.logger);

    const pending: DispatchRecord[] = [];
    let redispatched = 0;
    let topicBytes = Buffer.alloc(0);
    let topic = '';
    let lastStoreTimestampMs = 0;
    const { log, recovery } = await CommitLog.open<StoreRequest>({
      name: 'commit log',
      dir: join(o.dir, 'commitlog'),
      segmentBytes: o.segmentBytes,
      cache: this.cache,
      flushPolicy: o.flushPolicy,
      asyncFlushIntervalMs: o.asyncFlushIntervalMs,
      maxPendingBytes: o.maxPendingAppendBytes,
      maxFrameBytes: Math.max(o.maxRecordBytes, 64 * 1024 * 1024),
      fromLogOffset: Math.min(cqFrom, indexFrom),
      logger: o.logger,
      afterDurable: (round) => this.afterDurable(round),
      onFrame: (buf, pos, length, logOffset, kind) => {
        if (kind !== 'message') return;
        const fields = readDispatchFields(buf, pos, length);
        if (fields === null) return;
        const tlen = fields.topicEnd - fields.topicStart;
        if (
          tlen !== topicBytes.length ||
          buf.compare(topicBytes, 0, tlen, fields.topicStart, fields.topicEnd) !== 0
        ) {
          topicBytes = Buffer.from(buf.subarray(fields.topicStart, fields.topicEnd));
          topic = topicBytes.toString('utf8');
        }
        lastStoreTimestampMs = fields.storeTimestampMs;
        if (logOffset < cqFrom && logOffset < indexFrom) return;
        pending.push({
          topic,
          queueId: fields.queueId,
          queueOffset: fields.queueOffset,
          logOffset,
          size: length,
          tagHash: fields.tagHash,
          storeTimestampMs: fields.storeTimestampMs,
          keys: fields.keys.length > 0 ? fields.keys : undefined,
        });
      },
      afterChunk: async (logOffset) => {
        if (pending.length === 0) return;
        const batch = pending.splice(0, pending.length);
        redispatched += batch.length;
        await this.dispatcher.dispatch(batch, logOffset, {
          cqFromLogOffset: cqFrom,
          indexFromLogOffset: indexFrom,
          notify: false,
        });
      },
    });
    this.log = log;
    this.lastStoreTimestampMs = lastStoreTimestampMs;
    if (o.readAheadCacheBytes > 0) {
      this.blocks = new LogBlockCache(o.readAheadCacheBytes, (buf, at, length, logOffset) =>
        this.log.read(buf, at, length, logOffset),
      );
    }
    const endLogOffset = recovery.endLogOffset;
    if (endLogOffset < cqFrom) {
      // The log lost records the checkpoint had dispatched (corruption): forget their entries.
      await this.dispatcher.flushQueues();
      for (const queue of this.queues.all()) await queue.recoverTail(endLogOffset);
    }
    this.dispatcher.dispatchedLogOffset = endLogOffset;
    for (const queue of this.queues.all()) {
      if (queue.nextQueueOffset < queue.maxQueueOffset)
        queue.nextQueueOffset = queue.maxQueueOffset;
      await queue.expireBelow(this.log.minLogOffset);
    }
    await this.keyIndex.ensureActive(endLogOffset);
    // On a full or read-only disk the store still comes up, read-only: the checkpoint on disk
    // stays valid (the derived entries past it are kept in memory and written when space
    // returns) and appends are refused by the watermark below.
    await this.whenDiskAllows(() => this.checkpoint(), 'checkpoint at open');

    this.journal = await FileStateJournal.open({
      dir: join(o.dir, 'journal'),
      segmentBytes: o.journalSegmentBytes,
      flushPolicy: o.flushPolicy,
      asyncFlushIntervalMs: o.asyncFlushIntervalMs,
      maxPendingBytes: o.maxPendingAppendBytes,
      maxEntryBytes: o.maxRecordBytes,
      cache: this.cache,
      ...(o.logger ? { logger: o.logger } : {}),
    });

    await this.whenDiskAllows(async () => {
      await writeFile(abortPath, String(process.pid));
      await fsyncDir(o.dir);
    }, 'abort marker');
    await this.disk.check();
    if (this.disk.refuses(0)) {
      o.logger?.warn(
        { freeBytes: this.disk.freeBytes, minFreeDiskBytes: o.minFreeDiskBytes, dir: o.dir },
        'store opened read-only: free disk space below the watermark; publishes are refused ' +
          'until space is freed (receives, acks and queries are served from the reserve)',
      );
    }

    this.retention = new Retention(
      this.log.list,
      this.cache,
      o.retentionMs,
      { afterDelete: (min) => this.serial.run(() => this.followLogStart(min)) },
      o.logger,
    );
    this.recovery = {
      logEndOffset: endLogOffset,
      cleanShutdown: !crashed,
      truncatedBytes: recovery.truncatedBytes,
      ...(recovery.corruption ? { corruption: recovery.corruption } : {}),
      redispatchedRecords: redispatched,
      durationMs: Math.round(performance.now() - startedMs),
    };
    o.logger?.info({ ...this.recovery, rebuiltIndex: opened.rebuiltReason }, 'store recovered');
    this.startTimers();
  }

  /** Runs a write of recovery; on a full or read-only disk logs it and goes on without it. */
  private async whenDiskAllows(task: () => Promise<void>, what: string): Promise<void> {
    try {
      await task();
    } catch (err) {
      if (!isDiskFullOrReadOnly(err)) throw err;
      this.o.logger?.warn(
        { err, dir: this.o.dir },
        `store ${what} skipped: disk full or read-only`,
      );
    }
  }

  health(): StoreHealth {
    if (this.closing !== null) return { writable: false, detail: 'store closed' };
    for (const gc of [this.log.groupCommit, this.journal.groupCommit]) {
      if (gc.failed === null) continue;
      return {
        writable: false,
        detail: gc.resumable
          ? `${gc.failed.message}: disk full or read-only; writes resume when space returns`
          : `${gc.failed.message}: reopen to recover`,
      };
    }
    if (this.checkpointFailure !== null) {
      return { writable: false, detail: 'a derived file failed its fdatasync: reopen to recover' };
    }
    if (this.disk.refuses(0)) {
      return {
        writable: false,
        detail: `free disk space ${Math.max(0, this.disk.freeBytes)} bytes is below the watermark of ${this.o.minFreeDiskBytes}: publishes refused`,
      };
    }
    return { writable: true };
  }

  private startTimers(): void {
    const every = (ms: number, task: () => Promise<unknown>, what: string): void => {
      const timer = setInterval(() => {
        if (this.closing !== null) return;
        task().catch((err: unknown) => this.o.logger?.error({ err }, `store ${what} failed`));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(
      this.o.checkpointIntervalMs,
      () => this.serial.run(() => this.checkpoint()),
      'checkpoint',
    );
    every(this.o.retentionCheckIntervalMs, () => this.retention.runOnce(), 'retention');
    every(this.o.diskCheckIntervalMs, () => this.checkDiskAndResume(), 'disk check');
  }

  /** fdatasyncs what was dispatched, then records the position. Runs in the serial queue. */
  private async checkpoint(): Promise<void> {
    const dispatchedLogOffset = this.dispatcher.dispatchedLogOffset;
    if (dispatchedLogOffset === this.lastCheckpointLogOffset) return;
    if (this.checkpointFailure !== null) {
      throw new WharfError('IoError', 'a derived file failed its fdatasync; reopen to rebuild', {
        cause: this.checkpointFailure,
      });
    }
    await this.dispatcher.flushQueues();
    const dirty = [...this.dispatcher.dirty];
    this.dispatcher.dirty.clear();
    let synced = 0;
    try {
      for (const path of dirty) {
        try {
          if (path.endsWith('/') || !/\d{20}$/.test(path)) await fsyncDir(path);
          else await this.cache.with(path, (fd) => fdatasync(fd), false);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        synced++;
      }
    } catch (err) {
      // After a failed fdatasync the kernel may have dropped the pages (fsyncgate): a later one
      // succeeding proves nothing. No checkpoint passes this point until a reopen rebuilds the
      // derived files from the commit log.
      for (const path of dirty.slice(synced)) this.dispatcher.dirty.add(path);
      this.checkpointFailure ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    }
    await this.keyIndex.flush();
    await writeCheckpoint(this.o.dir, { dispatchedLogOffset, writtenAtMs: Date.now() });
    this.lastCheckpointLogOffset = dispatchedLogOffset;
  }

  private async followLogStart(minLogOffset: number): Promise<void> {
    this.blocks?.dropBelow(minLogOffset);
    for (const queue of this.queues.all()) await queue.expireBelow(minLogOffset);
    await this.keyIndex.expireBelow(minLogOffset);
  }

  private async afterDurable(round: readonly StoreRequest[]): Promise<void> {
    let records: DispatchRecord[];
    if (round.length === 1) {
      records = round[0].records;
    } else {
      records = [];
      for (const request of round) for (const r of request.records) records.push(r);
    }
    let end = 0;
    for (const request of round) {
      for (const chunk of request.chunks) {
        if ((chunk.buffer[9] & FLAG_END_OF_SEGMENT) === 0) {
          this.readCache.add(chunk.logOffset, chunk.buffer);
        }
        end = chunk.logOffset + chunk.buffer.length;
      }
    }
    await this.serial.run(() => this.dispatcher.dispatch(records, end));
  }

  append(messages: readonly AppendMessage[]): Promise<AppendResult[]> {
    try {
      return this.appendNow(messages);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private appendNow(messages: readonly AppendMessage[]): Promise<AppendResult[]> {
    if (this.closing !== null) throw new WharfError('StoreClosed', 'the store is closed');
    const count = messages.length;
    if (count === 0) return Promise.resolve([]);
    if (count === 1) return this.appendOne(messages[0]);
    const sizes: number[] = new Array<number>(count);
    let total = 0;
    for (let i = 0; i < count; i++) {
      const size = this.measure(messages[i]);
      sizes[i] = size;
      total += size;
    }
    this.log.groupCommit.checkAccept(total);
    this.refuseIfDiskFull(total);
    const now = Date.now();
    const storeTimestampMs = now > this.lastStoreTimestampMs ? now : this.lastStoreTimestampMs;
    this.lastStoreTimestampMs = storeTimestampMs;
    const list = this.log.list;
    const chunks: LogChunk[] = [];
    const records: DispatchRecord[] = new Array<DispatchRecord>(count);
    const results: AppendResult[] = new Array<AppendResult>(count);
    const logOffsets: number[] = new Array<number>(count);
    const segments: Segment[] = new Array<Segment>(count);
    const blanks: LogChunk[] = [];
    const blankBefore: (LogChunk | undefined)[] = [];
    for (let i = 0; i < count; i++) {
      const before = blanks.length;
      const placed = list.place(sizes[i], blanks);
      logOffsets[i] = placed.logOffset;
      segments[i] = placed.segment;
      if (blanks.length > before) blankBefore[i] = blanks[before];
    }
    // One buffer per run of records that land contiguously in one segment (normally all); a
    // roll's blank frame goes between the runs, so chunks stay in log order.
    let runStart = 0;
    for (let i = 0; i <= count; i++) {
      if (i < count && (i === runStart || segments[i] === segments[runStart])) {
        if (i === runStart && blankBefore[i] !== undefined) chunks.push(blankBefore[i]!);
        continue;
      }
      this.encodeRun(
        messages,
        sizes,
        logOffsets,
        runStart,
        i,
        segments[runStart],
        storeTimestampMs,
        chunks,
        records,
        results,
      );
      runStart = i;
      if (i < count && blankBefore[i] !== undefined) chunks.push(blankBefore[i]!);
    }
    this.disk.wrote(total);
    this.appendedMessages += count;
    return new Promise((resolve, reject) => {
      this.log.groupCommit.submit({
        chunks,
        bytes: total,
        records,
        done: (err) => (err === null ? resolve(results) : reject(err)),
      });
    });
  }

  /** The single-message publish (the common case), without the batch bookkeeping. */
  private appendOne(m: AppendMessage): Promise<AppendResult[]> {
    const size = this.measure(m);
    this.log.groupCommit.checkAccept(size);
    this.refuseIfDiskFull(size);
    const now = Date.now();
    const storeTimestampMs = now > this.lastStoreTimestampMs ? now : this.lastStoreTimestampMs;
    this.lastStoreTimestampMs = storeTimestampMs;
    const chunks: LogChunk[] = [];
    const { logOffset, segment } = this.log.list.place(size, chunks);
    const buffer = this.stage(size);
    const queue = this.queues.getOrCreate(m.topic, m.queueId);
    const queueOffset = queue.nextQueueOffset++;
    const tagHashValue = encodeMessage(buffer, 0, size, m, {
      logOffset,
      queueOffset,
      storeTimestampMs,
    });
    chunks.push({ logOffset, segment, buffer });
    const record: DispatchRecord = {
      topic: m.topic,
      queueId: m.queueId,
      queueOffset,
      logOffset,
      size,
      tagHash: tagHashValue,
      storeTimestampMs,
      keys: m.keys !== undefined && m.keys.length > 0 ? m.keys : undefined,
    };
    const results: AppendResult[] = [{ logOffset, queueOffset, size, storeTimestampMs }];
    this.disk.wrote(size);
    this.appendedMessages++;
    return new Promise((resolve, reject) => {
      this.log.groupCommit.submit({
        chunks,
        bytes: size,
        records: [record],
        done: (err) => (err === null ? resolve(results) : reject(err)),
      });
    });
  }

  /** A record's size, or the typed error for a message the store refuses. */
  private measure(m: AppendMessage): number {
    const size = measureMessage(m);
    if (typeof size === 'string') throw new WharfError('InvalidArgument', size);
    if (size > this.o.maxRecordBytes) {
      throw new WharfError(
        'RecordTooLarge',
        `record of ${size} bytes over the store limit of ${this.o.maxRecordBytes}`,
        { details: { size, maxRecordBytes: this.o.maxRecordBytes } },
      );
    }
    if (!Number.isInteger(m.queueId) || m.queueId < 0 || m.queueId > 0xffffffff) {
      throw new WharfError('InvalidArgument', 'queueId must be a 32-bit unsigned integer');
    }
    return size;
  }

  private refuseIfDiskFull(bytes: number): void {
    if (this.disk.refuses(bytes)) {
      throw new WharfError('DiskFull', 'free disk space is below the watermark', {
        retryAfterMs: this.o.diskCheckIntervalMs,
        details: { freeBytes: this.disk.freeBytes, minFreeDiskBytes: this.o.minFreeDiskBytes },
      });
    }
  }

  /**
   * Room for `bytes` of records in the current staging buffer: records of consecutive appends
   * sit side by side, so a group-commit round writes them as one iovec and no append allocates.
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

  private encodeRun(
    messages: readonly AppendMessage[],
    sizes: number[],
    logOffsets: number[],
    from: number,
    to: number,
    segment: Segment,
    storeTimestampMs: number,
    chunks: LogChunk[],
    records: DispatchRecord[],
    results: AppendResult[],
  ): void {
    let runBytes = 0;
    for (let k = from; k < to; k++) runBytes += sizes[k];
    const buffer = this.stage(runBytes);
    let pos = 0;
    for (let k = from; k < to; k++) {
      const m = messages[k];
      const queue = this.queues.getOrCreate(m.topic, m.queueId);
      const queueOffset = queue.nextQueueOffset++;
      const logOffset = logOffsets[k];
      const size = sizes[k];
      const tagHashValue = encodeMessage(buffer, pos, size, m, {
        logOffset,
        queueOffset,
        storeTimestampMs,
      });
      pos += size;
      records[k] = {
        topic: m.topic,
        queueId: m.queueId,
        queueOffset,
        logOffset,
        size,
        tagHash: tagHashValue,
        storeTimestampMs,
        keys: m.keys !== undefined && m.keys.length > 0 ? m.keys : undefined,
      };
      results[k] = { logOffset, queueOffset, size, storeTimestampMs };
    }
    chunks.push({ logOffset: logOffsets[from], segment, buffer });
  }

  async readQueue(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    options: ReadQueueOptions,
  ): Promise<ReadQueueResult> {
    this.assertOpen();
    const queue = this.queues.get(topic, queueId);
    const minQueueOffset = queue?.minQueueOffset ?? 0;
    const maxQueueOffset = queue?.maxQueueOffset ?? 0;
    const answer = (
      status: ReadQueueResult['status'],
      nextQueueOffset: number,
      messages: StoredMessage[] = [],
    ): ReadQueueResult => ({
      status,
      messages,
      nextQueueOffset,
      minQueueOffset: queue?.minQueueOffset ?? minQueueOffset,
      maxQueueOffset,
    });
    if (fromQueueOffset < minQueueOffset) return answer('OFFSET_EXPIRED', minQueueOffset);
    if (fromQueueOffset === maxQueueOffset) return answer('NO_MESSAGE', maxQueueOffset);
    if (fromQueueOffset > maxQueueOffset) return answer('OFFSET_OVERFLOW', maxQueueOffset);
    const q = queue!;
    const maxMessages = Math.max(1, Math.floor(options.maxMessages));
    const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    const tags = options.filter?.tags;
    const filter = tags !== undefined && tags.size > 0 ? new TagMatcher(tags) : null;
    const scan = Math.min(
      maxQueueOffset - fromQueueOffset,
      filter === null ? maxMessages : Math.max(maxMessages, MAX_FILTER_SCAN_ENTRIES),
    );
    const entries = await q.readEntries(fromQueueOffset, scan);
    const logMinOffset = this.log.minLogOffset;
    if (readUInt64(entries, 0) < logMinOffset) {
      // Retention deleted the records under this queue's head since the last pass.
      q.minQueueOffset = await q.searchByLogOffset(logMinOffset, q.minQueueOffset, maxQueueOffset);
      if (fromQueueOffset < q.minQueueOffset) return answer('OFFSET_EXPIRED', q.minQueueOffset);
    }
    const candidates: number[] = [];
    let scanned = scan;
    for (let i = 0; i < scan; i++) {
      if (filter !== null && !filter.hashes.has(entries.readUInt32BE(i * CQ_ENTRY_BYTES + 12))) {
        continue;
      }
      candidates.push(i);
      if (candidates.length >= maxMessages) {
        scanned = i + 1;
        break;
      }
    }
    // Spans of records to fetch: from the cache of recent records; from read-ahead blocks of the
    // log (a multi-message read, or a block already cached); else one pread per run of nearby
    // records. Every block and pread is in flight together.
    const spans: ReadSpan[] = [];
    const logMin = this.log.minLogOffset;
    const readableEnd = this.dispatcher.dispatchedLogOffset;
    const blocks = this.blocks;
    const needs = new Map<number, { capacity: number; needEnd: number }>();
    const needBlock = (start: number, capacity: number, needEnd: number): void => {
      const need = needs.get(start);
      if (need === undefined) needs.set(start, { capacity, needEnd });
      else if (needEnd > need.needEnd) need.needEnd = needEnd;
    };
    // Read ahead when blocks would serve several reads: a read of more than one message whose
    // records lie within less than a block (a read spanning more is one pread already).
    let readAhead = false;
    if (blocks !== null && candidates.length > 1) {
      const lastPos = candidates[candidates.length - 1] * CQ_ENTRY_BYTES;
      const readSpan =
        readUInt64(entries, lastPos) +
        entries.readUInt32BE(lastPos + 8) -
        readUInt64(entries, candidates[0] * CQ_ENTRY_BYTES);
      readAhead = readSpan < this.o.readAheadBlockBytes;
    }
    let c = 0;
    while (c < candidates.length) {
      const from = c;
      const firstPos = candidates[c] * CQ_ENTRY_BYTES;
      const spanLogOffset = readUInt64(entries, firstPos);
      let spanEnd = spanLogOffset + entries.readUInt32BE(firstPos + 8);
      const cached = this.readCache.find(spanLogOffset, spanEnd - spanLogOffset);
      c++;
      if (cached !== null) {
        const base = spanLogOffset - cached.pos;
        const limit = base + cached.buffer.length;
        while (c < candidates.length) {
          const p = candidates[c] * CQ_ENTRY_BYTES;
          const lo = readUInt64(entries, p);
          if (lo < base || lo + entries.readUInt32BE(p + 8) > limit) break;
          c++;
        }
        spans.push({ from, to: c, base, buffer: cached.buffer, source: 'memory' });
        continue;
      }
      const block = blocks === null ? null : this.blockAt(spanLogOffset);
      if (
        block !== null &&
        spanEnd <= block.start + this.o.readAheadBlockBytes * 2 &&
        (blocks!.has(block.start) || readAhead)
      ) {
        const blockEnd = block.start + block.capacity;
        if (spanEnd > blockEnd) {
          // A record across two blocks: both are read (the next one is wanted next anyway).
          const next = this.blockAt(blockEnd);
          if (next !== null && next.start === blockEnd && spanEnd <= blockEnd + next.capacity) {
            needBlock(block.start, block.capacity, blockEnd);
            needBlock(next.start, next.capacity, spanEnd);
            spans.push({
              from,
              to: c,
              base: spanLogOffset,
              buffer: EMPTY,
              source: 'straddle',
              blockStart: block.start,
              nextStart: next.start,
              needEnd: spanEnd,
            });
            continue;
          }
        } else {
          while (c < candidates.length) {
            const p = candidates[c] * CQ_ENTRY_BYTES;
            const lo = readUInt64(entries, p);
            const end = lo + entries.readUInt32BE(p + 8);
            if (lo < spanEnd || end > blockEnd) break;
            spanEnd = end;
            c++;
          }
          needBlock(block.start, block.capacity, spanEnd);
          spans.push({
            from,
            to: c,
            base: block.start,
            buffer: EMPTY,
            source: 'block',
            blockStart: block.start,
            nextStart: -1,
            needEnd: spanEnd,
          });
          continue;
        }
      }
      const segmentEnd = this.log.segmentEnd(spanLogOffset) ?? Number.MAX_SAFE_INTEGER;
      while (c < candidates.length) {
        const p = candidates[c] * CQ_ENTRY_BYTES;
        const lo = readUInt64(entries, p);
        const size = entries.readUInt32BE(p + 8);
        // Records of other queues in between are read along: one larger pread beats many.
        if (lo < spanEnd || lo - spanEnd > MAX_COALESCED_GAP_BYTES) break;
        if (lo + size > segmentEnd || lo + size - spanLogOffset > MAX_COALESCED_READ_BYTES) break;
        spanEnd = lo + size;
        c++;
      }
      spans.push({
        from,
        to: c,
        base: spanLogOffset,
        buffer: Buffer.allocUnsafe(spanEnd - spanLogOffset),
        source: 'read',
      });
    }
    const [reads, blockList] = await Promise.all([
      Promise.all(
        spans.map((span) =>
          span.source !== 'read' || span.base < logMin
            ? Promise.resolve(span.source === 'memory' ? span.buffer.length : 0)
            : this.log.read(span.buffer, 0, span.buffer.length, span.base),
        ),
      ),
      Promise.all(
        [...needs].map(([start, need]) =>
          blocks!.ensure(start, need.capacity, need.needEnd, readableEnd),
        ),
      ),
    ]);
    const loaded = new Map<number, LogBlock>();
    for (const block of blockList) loaded.set(block.start, block);
    let lastBlock: LogBlock | null = null;
    let lastNeedEnd = 0;
    for (let s = 0; s < spans.length; s++) {
      const span = spans[s];
      if (span.source === 'block') {
        const block = loaded.get(span.blockStart!)!;
        span.buffer = block.buf;
        reads[s] = block.length >= span.needEnd! - block.start ? block.buf.length : 0;
        lastBlock = block;
        lastNeedEnd = span.needEnd!;
      } else if (span.source === 'straddle') {
        const block = loaded.get(span.blockStart!)!;
        const next = loaded.get(span.nextStart!)!;
        const size = span.needEnd! - span.base;
        span.buffer = Buffer.allocUnsafe(size);
        if (block.length === block.capacity && next.length >= span.needEnd! - next.start) {
          const head = block.start + block.length - span.base;
          block.buf.copy(span.buffer, 0, span.base - block.start, block.length);
          next.buf.copy(span.buffer, head, 0, size - head);
          reads[s] = size;
        } else {
          reads[s] = 0;
        }
        lastBlock = next;
        lastNeedEnd = span.needEnd!;
      }
    }
    if (lastBlock !== null && fromQueueOffset + scanned < maxQueueOffset) {
      // The reader will want what follows: fetch the blocks holding the next stretch of log as
      // long as this read's (at least a block), while this one is served.
      const firstPos = candidates[0] * CQ_ENTRY_BYTES;
      const window = Math.max(
        lastNeedEnd - readUInt64(entries, firstPos),
        this.o.readAheadBlockBytes,
      );
      const aheadEnd = Math.min(lastNeedEnd + window, readableEnd);
      let start = lastBlock.start + lastBlock.capacity;
      for (let n = 0; n < MAX_PREFETCH_BLOCKS && start < aheadEnd; n++) {
        const next = this.blockAt(start);
        if (next === null || next.start !== start) break;
        blocks!.prefetch(next.start, next.capacity, readableEnd);
        start += next.capacity;
      }
    }
    const messages: StoredMessage[] = [];
    const hints = decodeHints(topic);
    let nextQueueOffset = fromQueueOffset + scanned;
    let bodyBytes = 0;
    outer: for (let s = 0; s < spans.length; s++) {
      const span = spans[s];
      const buffer = span.buffer;
      if (reads[s] < buffer.length) {
        if (span.base < this.log.minLogOffset) {
          // Retention deleted these records while we read: they are expired now.
          q.minQueueOffset = await q.searchByLogOffset(
            this.log.minLogOffset,
            q.minQueueOffset,
            maxQueueOffset,
          );
          if (messages.length === 0) return answer('OFFSET_EXPIRED', q.minQueueOffset);
          nextQueueOffset = messages[messages.length - 1].queueOffset + 1;
          break;
        }
        throw new WharfError(
          'CorruptIndex',
          `consume queue ${topic}/${queueId} points past the log`,
          {
            details: { logOffset: span.base },
          },
        );
      }
      for (let k = span.from; k < span.to; k++) {
        const index = candidates[k];
        const p = index * CQ_ENTRY_BYTES;
        const logOffset = readUInt64(entries, p);
        const size = entries.readUInt32BE(p + 8);
        const queueOffset = fromQueueOffset + index;
        const at = logOffset - span.base;
        if (filter !== null && !filter.matches(buffer, at, entries.readUInt32BE(p + 12))) continue;
        // Records from the cache of recent writes never left this process since they were
        // encoded and checksummed: their CRC is not computed again. Bytes read from a file are.
        const message = this.decodeAt(
          buffer,
          at,
          size,
          logOffset,
          hints,
          queueId,
          queueOffset,
          span.source !== 'memory',
        );
        messages.push(message);
        bodyBytes += message.body.length;
        if (messages.length >= maxMessages || bodyBytes >= maxBytes) {
          nextQueueOffset = queueOffset + 1;
          break outer;
        }
      }
    }
    return answer('FOUND', nextQueueOffset, messages);
  }

  /** The read-ahead block holding `logOffset`: aligned in its segment, never crossing it (a
   *  segment ends where the next starts: segments written with another segmentBytes differ). */
  private blockAt(logOffset: number): { start: number; capacity: number } | null {
    const list = this.log.list;
    const i = list.indexOf(logOffset);
    if (i < 0) return null;
    const segmentStart = list.segments[i].startLogOffset;
    const segmentEnd =
      i + 1 < list.segments.length
        ? list.segments[i + 1].startLogOffset
        : segmentStart + this.o.segmentBytes;
    const blockBytes = this.o.readAheadBlockBytes;
    const start = segmentStart + Math.floor((logOffset - segmentStart) / blockBytes) * blockBytes;
    return { start, capacity: Math.min(blockBytes, segmentEnd - start) };
  }

  private decodeAt(
    buffer: Buffer,
    at: number,
    size: number,
    logOffset: number,
    hints: DecodeHints,
    queueId: number,
    queueOffset: number,
    verifyCrc: boolean,
  ): StoredMessage {
    const topic = hints.topic;
    const check = checkFrame(buffer, at, at + size, logOffset, verifyCrc);
    if (check.status !== 'ok' || check.kind !== 'message' || check.length !== size) {
      const positionWrong = buffer.length >= at + 20 && readUInt64(buffer, at + 12) !== logOffset;
      throw positionWrong
        ? new WharfError(
            'CorruptIndex',
            `consume queue ${topic}/${queueId} entry ${queueOffset} points at no record`,
            {
              details: { logOffset, queueOffset },
            },
          )
        : new WharfError('CorruptRecord', `record at logOffset ${logOffset} failed its check`, {
            details: {
              logOffset,
              reason: check.status === 'corrupt' ? check.reason : check.status,
            },
          });
    }
    const message = decodeCheckedMessage(buffer, at, size, logOffset, hints);
    if (
      message === null ||
      message.queueId !== queueId ||
      message.queueOffset !== queueOffset ||
      message.topic !== topic
    ) {
      throw new WharfError(
        'CorruptIndex',
        `consume queue ${topic}/${queueId} entry ${queueOffset} does not match its record`,
        {
          details: { logOffset, queueOffset },
        },
      );
    }
    return message;
  }

  async readMessage(logOffset: number): Promise<StoredMessage | null> {
    this.assertOpen();
    if (!Number.isInteger(logOffset) || logOffset < this.log.minLogOffset) return null;
    if (logOffset + MESSAGE_HEADER_BYTES > this.dispatcher.dispatchedLogOffset) return null;
    let buffer: Buffer;
    let at: number;
    const head = this.readCache.find(logOffset, MESSAGE_HEADER_BYTES);
    const size = head === null ? 0 : head.buffer.readUInt32BE(head.pos);
    const whole = head === null ? null : this.readCache.find(logOffset, size);
    if (whole !== null) {
      buffer = whole.buffer;
      at = whole.pos;
    } else {
      buffer = Buffer.allocUnsafe(4096);
      let n = await this.log.read(buffer, 0, buffer.length, logOffset);
      if (n < MESSAGE_HEADER_BYTES) return null;
      const length = buffer.readUInt32BE(0);
      if (length > n && length <= this.o.maxRecordBytes) {
        buffer = Buffer.allocUnsafe(length);
        n = await this.log.read(buffer, 0, length, logOffset);
      }
      at = 0;
      buffer = buffer.subarray(0, n);
    }
    if (readUInt64(buffer, at + 12) !== logOffset) return null;
    const check = checkFrame(buffer, at, buffer.length, logOffset);
    if (check.status === 'corrupt' && check.reason === 'CRC mismatch') {
      throw new WharfError('CorruptRecord', `record at logOffset ${logOffset} failed its CRC`, {
        details: { logOffset },
      });
    }
    if (check.status !== 'ok' || check.kind !== 'message') return null;
    const message = decodeCheckedMessage(buffer, at, check.length, logOffset);
    if (message === null || this.queues.isDeleted(message.topic, logOffset)) return null;
    return message;
  }

  queueOffsets(topic: string, queueId: number): QueueOffsets {
    const queue = this.queues.get(topic, queueId);
    return {
      minQueueOffset: queue?.minQueueOffset ?? 0,
      maxQueueOffset: queue?.maxQueueOffset ?? 0,
    };
  }

  queueIds(topic: string): number[] {
    return this.queues.queueIds(topic).filter((id) => {
      const q = this.queues.get(topic, id)!;
      return q.maxQueueOffset > 0 || q.nextQueueOffset > 0;
    });
  }

  topics(): string[] {
    return this.queues.topicNames();
  }

  async queueOffsetByTime(topic: string, queueId: number, timestampMs: number): Promise<number> {
    this.assertOpen();
    const queue = this.queues.get(topic, queueId);
    if (queue === undefined) return 0;
    return queue.searchByTime(timestampMs);
  }

  async queryByKey(topic: string, key: string, limit: number): Promise<StoredMessage[]> {
    this.assertOpen();
    const found: StoredMessage[] = [];
    const seen = new Set<number>();
    if (limit <= 0) return found;
    for await (const logOffset of this.keyIndex.candidates(topic, key, this.log.minLogOffset)) {
      if (seen.has(logOffset)) continue;
      seen.add(logOffset);
      const message = await this.readMessage(logOffset).catch(() => null);
      if (message === null || message.topic !== topic || !message.keys.includes(key)) continue;
      found.push(message);
      if (found.length >= limit) break;
    }
    return found;
  }

  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    const queues: ConsumeQueue[] = this.queues.forget(topic, this.log.endLogOffset);
    await this.serial.run(async () => {
      for (const queue of queues) {
        this.dispatcher.forget(queue);
        for (const start of queue.fileStarts) this.dispatcher.dirty.delete(queue.filePath(start));
        this.dispatcher.dirty.delete(queue.dir);
      }
      await this.queues.removeFiles(queues, topic);
      await this.queues.persistDeleted(this.log.minLogOffset);
    });
  }

  onDispatch(
    listener: (topic: string, queueId: number, maxQueueOffset: number) => void,
  ): () => void {
    return this.dispatcher.onDispatch(listener);
  }

  stats(): Record<string, number> {
    const gc = this.log.groupCommit;
    return {
      logMinOffset: this.log.minLogOffset,
      logEndOffset: this.log.endLogOffset,
      logWrittenOffset: gc.writtenLogOffset,
      logSyncedOffset: gc.syncedLogOffset,
      dispatchedLogOffset: this.dispatcher.dispatchedLogOffset,
      segmentCount: this.log.list.segments.length,
      queueCount: this.queues.queueCount,
      appendedMessages: this.appendedMessages,
      groupCommitRounds: gc.rounds,
      fdatasyncs: gc.syncs,
      pendingAppendBytes: gc.pendingBytes,
      freeDiskBytes: this.disk.freeBytes,
      readCacheBytes: this.readCache.cachedBytes,
      readCacheHits: this.readCache.hits,
      readCacheMisses: this.readCache.misses,
      consumeQueueCacheBytes: this.pageCache.cachedBytes,
      consumeQueueCacheHits: this.pageCache.hits,
      consumeQueueCacheMisses: this.pageCache.misses,
      consumeQueueCachePrefetches: this.pageCache.prefetches,
      readAheadCacheBytes: this.blocks?.cachedBytes ?? 0,
      readAheadHits: this.blocks?.hits ?? 0,
      readAheadMisses: this.blocks?.misses ?? 0,
      readAheadPrefetches: this.blocks?.prefetches ?? 0,
      openFiles: this.cache.openCount,
      keyIndexFiles: this.keyIndex.fileCount,
      keyIndexEntriesWritten: this.keyIndex.entriesWritten,
      retentionDeletedSegments: this.retention.deletedSegments,
      journalBytesSinceSnapshot: this.journal.bytesSinceSnapshot(),
      journalSegmentCount: this.journal.segmentCount,
    };
  }

  /** Test and operator hooks: run retention or a checkpoint now. */
  runRetention(nowMs?: number): Promise<number> {
    return this.retention.runOnce(nowMs);
  }

  runCheckpoint(): Promise<void> {
    return this.serial.run(() => this.checkpoint());
  }

  checkDisk(): Promise<void> {
    return this.checkDiskAndResume();
  }

  /**
   * Measures free space; after a write refused by a full or read-only disk, once space is back
   * above the watermark, cuts the commit log and the journal back to what was acknowledged and
   * takes appends again — no restart. A failure that is not resumable (EIO) stays: reopen.
   */
  private async checkDiskAndResume(): Promise<void> {
    await this.disk.check();
    if (this.disk.refuses(0) || this.closing !== null) return;
    if (this.log.groupCommit.resumable) {
      await this.serial.run(() =>
        this.log.resume(() => {
          // Offsets handed to the refused appends are given again (their records were cut).
          for (const queue of this.queues.all()) queue.nextQueueOffset = queue.maxQueueOffset;
        }),
      );
      this.o.logger?.info({ dir: this.o.dir }, 'commit log writable again');
    }
    if (this.journal.failed !== null && (await this.journal.resume())) {
      this.o.logger?.info({ dir: this.o.dir }, 'journal writable again');
    }
  }

  private assertOpen(): void {
    if (this.closing !== null) throw new WharfError('StoreClosed', 'the store is closed');
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    let clean = true;
    try {
      await this.log.close();
      await this.journal.close();
      clean = this.log.groupCommit.failed === null && this.journal.failed === null;
      if (clean) {
        // On a full or read-only disk the checkpoint stays where it was: the next start
        // re-dispatches from there (and the abort marker stays, as after a crash).
        clean = await this.serial.run(async () => {
          let written = true;
          await this.whenDiskAllows(async () => {
            written = false;
            await this.checkpoint();
            written = true;
          }, 'checkpoint at close');
          return written;
        });
      }
      if (clean) {
        // Only a store whose every write and fsync succeeded is marked cleanly stopped.
        await rm(join(this.o.dir, ABORT_FILE), { force: true });
        await fsyncDir(this.o.dir);
      }
    } finally {
      // Consume-queue writes may still be in flight (a failed store skips the checkpoint that
      // waits for them): no descriptor is closed under a write, whose number could be reused.
      // Derived-file tasks still queued (a topic deletion) finish first.
      await this.serial.run(() => Promise.resolve());
      await Promise.all(this.queues.all().map((queue) => queue.settle().catch(() => undefined)));
      this.readCache.clear();
      this.pageCache.clear();
      this.blocks?.clear();
      await this.cache.closeAll();
      this.dirLock?.release();
    }
  }
}

/** Tag filter: the hash from the consume queue first, then the tag bytes of the record. */
class TagMatcher {
  readonly hashes = new Set<number>();
  private readonly byHash = new Map<number, Buffer[]>();

  constructor(tags: ReadonlySet<string>) {
    for (const tag of tags) {
      const bytes = Buffer.from(tag, 'utf8');
      const hash = bytes.length === 0 ? 0 : hashBytes(bytes, 0, bytes.length);
      this.hashes.add(hash);
      const list = this.byHash.get(hash) ?? [];
      list.push(bytes);
      this.byHash.set(hash, list);
    }
  }

  matches(buffer: Buffer, at: number, hash: number): boolean {
    const list = this.byHash.get(hash);
    if (list === undefined) return false;
    for (const tag of list) if (recordTagEquals(buffer, at, tag)) return true;
    return false;
  }
}
