// The store facade (RocketMQ's DefaultMessageStore): opens (recovery first), appends through the
// commit log's group commit, dispatches durable records into consume queues and the key index,
// serves reads, checkpoints derived files, runs retention and the disk watermark, and owns the
// state journal. Invariants: offsets are assigned synchronously inside append() (assignment order
// = write order); a message is readable and announced only once durable under the flush policy;
// all derived-file work (dispatch, checkpoint, retention, topic deletion) runs one task at a time.
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WharfError } from '../errors.js';
import { Checkpointer, readCheckpoint } from './checkpoint.js';
import { CommitLog } from './commit-log.js';
import { eachLimited, PARALLEL_FILE_TASKS } from './each-limited.js';
import type { ConsumeQueue } from './consume-queue.js';
import type { DirLock } from './dir-lock.js';
import { lockDir } from './dir-lock.js';
import { Dispatcher, Redispatcher } from './dispatcher.js';
import { FileCache } from './file-cache.js';
import { closeFile, fsyncDir, isDiskFullOrReadOnly, isNotFound, openFile } from './file-io.js';
import { KeyIndex } from './key-index.js';
import { LogBlockCache } from './log-block-cache.js';
import type { StoreRequest } from './message-appender.js';
import { MessageAppender } from './message-appender.js';
import type { MessageStore, MessageStoreOptions, StoreHealth } from './message-store-api.js';
import { QueuePageCache } from './queue-page-cache.js';
import { QueueReader } from './queue-reader.js';
import { QueueTable } from './queue-table.js';
import { ReadCache } from './read-cache.js';
import { SerialQueue } from './serial-queue.js';
import type { ResolvedOptions } from './store-options.js';
import { resolveOptions } from './store-options.js';
import { DiskWatermark, Retention } from './retention.js';
import { FileStateJournal } from './state-journal.js';
import type {
  AppendMessage,
  AppendResult,
  QueueEntriesResult,
  QueueOffsets,
  ReadQueueOptions,
  ReadQueueResult,
  RecoveryReport,
  StoredMessage,
} from './types.js';

const ABORT_FILE = 'abort';
/** A group-commit round waiting this long on the disk makes the store report itself unhealthy
 *  (readiness): a stalled volume gives no error, only waits. */
export const STALLED_DISK_MS = 10_000;

export { MIN_FREE_DISK_FLOOR_BYTES } from './store-options.js';

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
  private appender!: MessageAppender;
  private reader!: QueueReader;
  private readonly cache: FileCache;
  private readonly queues: QueueTable;
  private readonly pageCache: QueuePageCache;
  /** Read-ahead blocks of the log for queue readers; null when turned off. */
  private blocks: LogBlockCache | null = null;
  private readonly readCache: ReadCache;
  private readonly serial = new SerialQueue();
  private readonly disk: DiskWatermark;
  private closing: Promise<void> | null = null;
  private timers: NodeJS.Timeout[] = [];
  /** Held from before the first read of the directory until every descriptor is closed. */
  private dirLock: DirLock | null = null;
  private checkpointer!: Checkpointer;
  /** The timer's checkpoint while it runs (close waits for it). */
  private backgroundCheckpoint: Promise<void> | null = null;

  private constructor(private readonly o: ResolvedOptions) {
    this.cache = new FileCache(o.maxOpenFiles);
    this.pageCache = new QueuePageCache(o.consumeQueueCacheBytes);
    this.queues = new QueueTable(
      o.dir,
      join(o.dir, 'consumequeue'),
      o.consumeQueueSegmentEntries,
      this.cache,
      this.pageCache,
      o.deletionLogLines,
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
    // The consume queues are derived from the log: gone as a whole (deleted by hand to have them
    // rebuilt, as operators do with RocketMQ's), they are re-dispatched from the log's start,
    // whatever the checkpoint says (else every message stored so far would be unreachable)
    const queuesKept = await access(join(o.dir, 'consumequeue')).then(
      () => true,
      (err: unknown) => {
        if (isNotFound(err)) return false;
        throw err; // unreadable is not missing
      },
    );
    const cqFrom = queuesKept ? (checkpoint?.dispatchedLogOffset ?? 0) : 0;
    if (!queuesKept && checkpoint !== null && checkpoint.dispatchedLogOffset > 0) {
      o.logger?.warn(
        { dispatchedLogOffset: checkpoint.dispatchedLogOffset },
        'the consume queues are missing: rebuilding them from the commit log',
      );
    }
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
    await eachLimited(this.queues.all(), PARALLEL_FILE_TASKS, (queue) => queue.recoverTail(cqFrom));
    await this.queues.dropStaleQueues();
    this.dispatcher = new Dispatcher(this.queues, this.keyIndex, 0, o.logger);
    const redispatch = new Redispatcher(this.dispatcher, this.queues, cqFrom, indexFrom);
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
      ...(o.commitObserver === undefined ? {} : { observer: o.commitObserver }),
      afterDurable: (round) => this.appender.afterDurable(round),
      onFrame: redispatch.onFrame,
      afterChunk: redispatch.afterChunk,
    });
    this.log = log;
    const endLogOffset = recovery.endLogOffset;
    const belowCheckpoint = checkpoint !== null && endLogOffset < checkpoint.dispatchedLogOffset;
    if (belowCheckpoint) {
      // the checkpoint is written only past durable records: these were durable, and are gone
      o.logger?.error(
        {
          code: 'CorruptRecord',
          logEndOffset: endLogOffset,
          checkpointLogOffset: checkpoint.dispatchedLogOffset,
          lostBytes: checkpoint.dispatchedLogOffset - endLogOffset,
        },
        'the commit log ends below its checkpoint: records stored (and acknowledged) there are ' +
          'gone, a segment emptied or removed (damage, or a power loss under the async flush); ' +
          'their messages are lost unless the data dir is restored from a backup',
      );
    }
    if (this.queues.clampDeletions(endLogOffset)) {
      await this.queues.writeSnapshot(log.minLogOffset).catch((err: unknown) => {
        // a full or read-only disk: the next deletion writes it (logNeedsRewrite)
        o.logger?.warn({ err }, 'could not record deleted topics taken back to the log end');
      });
    }
    await redispatch.finish(endLogOffset, log.minLogOffset);
    // records were lost (cut back, or below the checkpoint): the next ones start a new segment,
    // never at a lost one's position (its message id)
    if (recovery.truncatedBytes > 0 || belowCheckpoint) await log.sealActiveSegment();
    if (o.readAheadCacheBytes > 0) {
      this.blocks = new LogBlockCache(o.readAheadCacheBytes, (buf, at, length, logOffset) =>
        log.read(buf, at, length, logOffset),
      );
    }
    this.appender = new MessageAppender({
      log,
      queues: this.queues,
      disk: this.disk,
      readCache: this.readCache,
      maxRecordBytes: o.maxRecordBytes,
      diskCheckIntervalMs: o.diskCheckIntervalMs,
      lastStoreTimestampMs: redispatch.lastStoreTimestampMs,
      dispatch: (records, end) => this.serial.run(() => this.dispatcher.dispatch(records, end)),
    });
    this.reader = new QueueReader({
      queues: this.queues,
      log,
      dispatcher: this.dispatcher,
      readCache: this.readCache,
      blocks: this.blocks,
      segmentBytes: o.segmentBytes,
      blockBytes: o.readAheadBlockBytes,
      maxRecordBytes: o.maxRecordBytes,
      ...(o.logger ? { logger: o.logger } : {}),
    });
    this.checkpointer = new Checkpointer(o.dir, this.dispatcher, this.keyIndex, this.cache);
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
      {
        afterDelete: (min) => this.serial.run(() => this.followLogStart(min)),
        settled: () => this.log.groupCommit.settledLogOffset,
        ...(o.retentionFloor === undefined ? {} : { floor: o.retentionFloor }),
      },
      o.logger,
    );
    this.recovery = {
      logEndOffset: endLogOffset,
      cleanShutdown: !crashed,
      truncatedBytes: recovery.truncatedBytes,
      ...(recovery.corruption ? { corruption: recovery.corruption } : {}),
      redispatchedRecords: redispatch.redispatched,
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
    if (this.checkpointer.failure !== null) {
      return { writable: false, detail: 'a derived file failed its fdatasync: reopen to recover' };
    }
    for (const gc of [this.log.groupCommit, this.journal.groupCommit]) {
      const stalled = gc.stalledMs();
      if (stalled < STALLED_DISK_MS) continue;
      return {
        writable: false,
        detail: `a write to the data disk has waited ${Math.round(stalled / 1000)} s (the disk stalled?); publishes and acks wait for it`,
      };
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
    every(this.o.checkpointIntervalMs, () => this.periodicCheckpoint(), 'checkpoint');
    every(this.o.retentionCheckIntervalMs, () => this.retention.runOnce(), 'retention');
    every(this.o.diskCheckIntervalMs, () => this.checkDiskAndResume(), 'disk check');
  }

  /** Records topic deletions a failed deleteTopic left unrecorded, fdatasyncs what was
   *  dispatched, then records the position. Runs in the serial queue. */
  private async checkpoint(): Promise<void> {
    await this.queues.persistDeleted(this.log.minLogOffset);
    await this.checkpointer.run();
  }

  /** The timer's checkpoint: written out in the serial queue, synced and recorded outside it
   *  (Checkpointer), so dispatch — and the publishes waiting for it — does not wait for the
   *  syncs. A tick while the last one still syncs is skipped. */
  private periodicCheckpoint(): Promise<void> {
    if (this.backgroundCheckpoint !== null) return Promise.resolve();
    const run = this.serial
      .run(async () => {
        await this.queues.persistDeleted(this.log.minLogOffset);
        return this.checkpointer.prepare();
      })
      .then((prepared) => (prepared === null ? undefined : this.checkpointer.complete(prepared)))
      .finally(() => {
        this.backgroundCheckpoint = null;
      });
    this.backgroundCheckpoint = run;
    return run;
  }

  private async followLogStart(minLogOffset: number): Promise<void> {
    this.blocks?.dropBelow(minLogOffset);
    await eachLimited(this.queues.all(), PARALLEL_FILE_TASKS, (queue) =>
      queue.expireBelow(minLogOffset),
    );
    await this.keyIndex.expireBelow(minLogOffset);
  }

  append(messages: readonly AppendMessage[]): Promise<AppendResult[]> {
    try {
      return this.appendNow(messages);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private appendNow(messages: readonly AppendMessage[]): Promise<AppendResult[]> {
    if (this.closing !== null) throw closedError();
    if (messages.length === 0) return Promise.resolve([]);
    return this.appender.append(messages);
  }

  // not async: a read is on the consume path, and an async wrapper would add a promise per read
  readQueue(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    options: ReadQueueOptions,
  ): Promise<ReadQueueResult> {
    if (this.closing !== null) return Promise.reject(closedError());
    return this.reader.readQueue(topic, queueId, fromQueueOffset, options);
  }

  queueEntries(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    count: number,
  ): Promise<QueueEntriesResult> {
    if (this.closing !== null) return Promise.reject(closedError());
    return this.reader.queueEntries(topic, queueId, fromQueueOffset, count);
  }

  readMessage(logOffset: number): Promise<StoredMessage | null> {
    if (this.closing !== null) return Promise.reject(closedError());
    return this.reader.readMessage(logOffset);
  }

  readMessages(logOffsets: readonly number[]): Promise<(StoredMessage | null)[]> {
    if (this.closing !== null) return Promise.reject(closedError());
    return this.reader.readMessages(logOffsets);
  }

  queueOffsets(topic: string, queueId: number): QueueOffsets {
    const queue = this.queues.get(topic, queueId);
    return {
      minQueueOffset: queue?.minQueueOffset ?? 0,
      maxQueueOffset: queue?.maxQueueOffset ?? 0,
    };
  }

  lastStoreTimestampMs(): number {
    return this.appender.lastStoreTimestamp;
  }

  deletedAfter(topic: string, logOffset: number): boolean {
    return this.queues.isDeleted(topic, logOffset);
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
    const found: StoredMessage[] = [];
    if (limit <= 0) return found;
    for await (const message of this.messagesByKey(topic, key)) {
      found.push(message);
      if (found.length >= limit) break;
    }
    return found;
  }

  async *messagesByKey(topic: string, key: string): AsyncGenerator<StoredMessage> {
    this.assertOpen();
    const seen = new Set<number>();
    for await (const logOffset of this.keyIndex.candidates(topic, key, this.log.minLogOffset)) {
      if (seen.has(logOffset)) continue;
      seen.add(logOffset);
      const message = await this.readMessage(logOffset).catch(() => null);
      if (message === null || message.topic !== topic || !message.keys.includes(key)) continue;
      yield message;
    }
  }

  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    const queues: ConsumeQueue[] = this.queues.forget(topic, this.log.endLogOffset);
    await this.serial.run(async () => {
      for (const queue of queues) {
        this.dispatcher.forget(queue);
      }
      // the deletion durable first: a crash before the files are gone leaves files that the next
      // open recognises as the deleted incarnation's (dropStaleQueues), never a topic that
      // re-dispatch would bring back past the checkpoint. A deletion that fails (a full disk) is
      // the caller's to retry (the broker's drop, left pending): the retry removes these files.
      try {
        await this.queues.persistDeleted(this.log.minLogOffset);
        await this.queues.removeFiles(queues, topic);
      } catch (error) {
        this.queues.keepForRemoval(topic, queues);
        throw error;
      }
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
      appendedMessages: this.appender.appendedMessages,
      groupCommitRounds: gc.rounds,
      fdatasyncs: gc.syncs,
      pendingAppendBytes: gc.pendingBytes,
      freeDiskBytes: this.disk.freeBytes,
      readCacheBytes: this.readCache.cachedBytes,
      corruptMessagesSkipped: this.reader.skippedDamaged,
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
  sealAfterLoss(): Promise<void> {
    return this.log.sealActiveSegment();
  }

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
          for (const queue of this.queues.all()) queue.reclaimUnwrittenOffsets();
        }),
      );
      this.o.logger?.info({ dir: this.o.dir }, 'commit log writable again');
    }
    if (this.journal.failed !== null && (await this.journal.resume())) {
      this.o.logger?.info({ dir: this.o.dir }, 'journal writable again');
    }
  }

  private assertOpen(): void {
    if (this.closing !== null) throw closedError();
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
      // a timer's checkpoint still syncing (its files are not closed under it)
      await this.backgroundCheckpoint?.catch(() => undefined);
      await Promise.all(this.queues.all().map((queue) => queue.settle().catch(() => undefined)));
      this.readCache.clear();
      this.pageCache.clear();
      this.blocks?.clear();
      await this.cache.closeAll();
      this.dirLock?.release();
    }
  }
}

function closedError(): WharfError {
  return new WharfError('StoreClosed', 'the store is closed');
}
