// Group commit for a frame log (RocketMQ's GroupCommitService, the Node way): requests queue up
// while a write is in flight; when it completes, everything queued goes out in ONE positional
// writev per touched segment followed by ONE fdatasync (sync policy), then the round's
// `afterDurable` hook runs (the dispatcher) and every waiter resolves, in order, before the
// next round starts. Invariants:
// nothing is acknowledged before its bytes are durable under the policy; pending bytes never pass
// the bound; after a failed write or fsync nothing more is written or acknowledged (fsyncgate):
// the store must be reopened, and recovery decides what survived.
import { WharfError } from '../errors.js';
import type { FileCache } from './file-cache.js';
import { fdatasync, fsyncDir, isDiskFullOrReadOnly, pwritev } from './file-io.js';
import type { Segment } from './segment.js';
import type { LogChunk } from './segment-list.js';
import type { FlushPolicy, StoreLogger } from './types.js';
import type { CommitObserver } from './message-store-api.js';

export interface CommitRequest {
  chunks: LogChunk[];
  bytes: number;
  /** Called once: null when durable under the policy (and dispatched), else the failure. */
  done(err: Error | null): void;
}

export interface GroupCommitOptions<R extends CommitRequest = CommitRequest> {
  name: string;
  cache: FileCache;
  flushPolicy: FlushPolicy;
  asyncFlushIntervalMs: number;
  maxPendingBytes: number;
  /** Runs once per round after it is durable and before its requests resolve; rounds in order. */
  afterDurable?: (round: readonly R[]) => Promise<void>;
  logger?: StoreLogger;
  /** Told of each round's size and timings. */
  observer?: CommitObserver;
}

export class GroupCommit<R extends CommitRequest = CommitRequest> {
  /** Bytes submitted and not yet acknowledged. */
  pendingBytes = 0;
  /** End of the bytes written to the files (maybe not yet synced). */
  writtenLogOffset: number;
  /** End of the bytes known fdatasynced. */
  syncedLogOffset: number;
  rounds = 0;
  syncs = 0;
  private queue: R[] = [];
  private writing = false;
  /** When the round being written and synced began; null between rounds. */
  private roundSince: number | null = null;
  private failure: WharfError | null = null;
  private failureResumable = false;
  private closed = false;
  private readonly unsynced = new Set<Segment>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  /** End of what the last finished round acknowledged. */
  private ackedLogOffset: number;
  private positionWaiters: {
    logOffset: number;
    resolve: () => void;
    reject: (err: Error) => void;
  }[] = [];

  constructor(
    private readonly options: GroupCommitOptions<R>,
    endLogOffset: number,
  ) {
    this.writtenLogOffset = endLogOffset;
    this.syncedLogOffset = endLogOffset;
    this.ackedLogOffset = endLogOffset;
  }

  start(): void {
    if (this.options.flushPolicy === 'async' && this.timer === undefined) {
      this.timer = setInterval(() => {
        void this.syncNow().catch(() => undefined);
      }, this.options.asyncFlushIntervalMs);
      this.timer.unref();
    }
  }

  get failed(): WharfError | null {
    return this.failure;
  }

  /** Throws the error an append of `bytes` must get now, if any (call before placing frames). */
  checkAccept(bytes: number): void {
    if (this.failure !== null) {
      throw this.failureResumable
        ? new WharfError('DiskFull', `${this.options.name}: disk full or read-only`, {
            retryAfterMs: 1000,
            cause: this.failure,
          })
        : new WharfError('StoreClosed', `${this.options.name} failed; reopen to recover`, {
            cause: this.failure,
          });
    }
    if (this.closed) throw new WharfError('StoreClosed', `${this.options.name} is closed`);
    if (this.pendingBytes > 0 && this.pendingBytes + bytes > this.options.maxPendingBytes) {
      throw new WharfError('AppendQueueFull', `${this.options.name}: too many appends pending`, {
        retryAfterMs: 10,
        details: { pendingBytes: this.pendingBytes },
      });
    }
  }

  submit(request: R): void {
    this.pendingBytes += request.bytes;
    this.queue.push(request);
    if (!this.writing) {
      this.writing = true;
      void this.loop();
    }
  }

  /** How long the round in progress has been waiting on the disk (0 between rounds): a disk
   *  that stalls (a frozen or hung volume) holds it, and no error ever comes. */
  stalledMs(now = Date.now()): number {
    return this.roundSince === null ? 0 : Math.max(0, now - this.roundSince);
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 && this.failure === null) {
      const round = this.queue;
      this.queue = [];
      this.roundSince = Date.now();
      try {
        await this.writeRound(round);
      } catch (err) {
        this.roundSince = null;
        this.fail(err, round);
        break;
      }
      await this.finish(round);
      this.roundSince = null;
      // Not pipelined on purpose: the waiters just resolved re-append during this turn and all
      // go out in the next round, so a round carries every appender (twice the messages per
      // fdatasync of a pipelined writer, which matters most on disks with slow fsyncs).
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.writing = false;
    this.wakeIdle();
  }

  private async writeRound(round: R[]): Promise<void> {
    this.rounds++;
    const startedMs = performance.now();
    let bytes = 0;
    for (const request of round) bytes += request.bytes;
    const touched: Segment[] = [];
    let runSegment: Segment | null = null;
    let runStart = 0;
    let runEnd = 0;
    let buffers: Buffer[] = [];
    for (const request of round) {
      for (const chunk of request.chunks) {
        if (chunk.segment !== runSegment || chunk.logOffset !== runEnd) {
          if (runSegment !== null) await this.writeRun(runSegment, runStart, buffers);
          runSegment = chunk.segment;
          runStart = chunk.logOffset;
          runEnd = chunk.logOffset;
          buffers = [];
          if (!touched.includes(runSegment)) touched.push(runSegment);
        }
        const b = chunk.buffer;
        const last = buffers.length > 0 ? buffers[buffers.length - 1] : undefined;
        if (
          last !== undefined &&
          last.buffer === b.buffer &&
          last.byteOffset + last.length === b.byteOffset
        ) {
          // Adjacent views of one staging buffer: one iovec (each costs in the writev call).
          buffers[buffers.length - 1] = Buffer.from(
            last.buffer,
            last.byteOffset,
            last.length + b.length,
          );
        } else {
          buffers.push(b);
        }
        runEnd += b.length;
      }
    }
    if (runSegment !== null) await this.writeRun(runSegment, runStart, buffers);
    const writtenMs = performance.now();
    let syncMs: number | null = null;
    if (this.options.flushPolicy === 'sync') {
      await Promise.all(touched.map((s) => this.syncSegment(s)));
      this.syncs++;
      this.syncedLogOffset = runEnd;
      syncMs = performance.now() - writtenMs;
    } else {
      for (const s of touched) this.unsynced.add(s);
    }
    this.writtenLogOffset = runEnd;
    this.options.observer?.round({
      appends: round.length,
      bytes,
      writeMs: writtenMs - startedMs,
      syncMs,
    });
  }

  private async writeRun(segment: Segment, logOffset: number, buffers: Buffer[]): Promise<void> {
    const cache = this.options.cache;
    if (!segment.created) {
      // A new segment file: its directory entry must be durable before anything in it is acked.
      await cache.with(segment.path, () => Promise.resolve());
      await fsyncDir(this.dirOf(segment));
      segment.created = true;
    }
    // never created here: a segment file that is gone (deleted under the round) fails the round
    // rather than coming back empty, which recovery would read as a damaged log
    await cache.with(
      segment.path,
      (fd) => pwritev(fd, buffers, logOffset - segment.startLogOffset),
      false,
    );
  }

  private dirOf(segment: Segment): string {
    return segment.path.slice(0, segment.path.length - segment.fileName.length - 1);
  }

  private syncSegment(segment: Segment): Promise<void> {
    return this.options.cache.with(segment.path, (fd) => fdatasync(fd), false);
  }

  private async finish(round: R[]): Promise<void> {
    if (this.failure !== null) {
      this.rejectAll(round, this.failure);
      return;
    }
    try {
      await this.options.afterDurable?.(round);
    } catch (err) {
      this.fail(err, round, 'dispatch');
      return;
    }
    for (const request of round) {
      this.pendingBytes -= request.bytes;
      request.done(null);
    }
    this.ackedLogOffset = this.writtenLogOffset;
    if (this.positionWaiters.length > 0) {
      const ready = this.positionWaiters.filter((w) => w.logOffset <= this.ackedLogOffset);
      this.positionWaiters = this.positionWaiters.filter((w) => w.logOffset > this.ackedLogOffset);
      for (const w of ready) w.resolve();
    }
  }

  /** Moves every position to `logOffset` (a journal continuing after its snapshot). */
  resetEnd(logOffset: number): void {
    this.writtenLogOffset = logOffset;
    this.syncedLogOffset = logOffset;
    this.ackedLogOffset = logOffset;
  }

  /** Resolves once everything placed below `logOffset` is acknowledged (durable per policy). */
  whenAcknowledged(logOffset: number): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (logOffset <= this.ackedLogOffset) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.positionWaiters.push({ logOffset, resolve, reject }),
    );
  }

  /** fdatasync every segment written since the last sync (async policy; close). */
  syncNow(): Promise<void> {
    if (this.syncing !== null) return this.syncing;
    if (this.unsynced.size === 0 || this.failure !== null) return Promise.resolve();
    const segments = [...this.unsynced];
    this.unsynced.clear();
    const upTo = this.writtenLogOffset;
    const syncing = Promise.all(segments.map((s) => this.syncSegment(s)))
      .then(() => {
        this.syncs++;
        this.syncedLogOffset = Math.max(this.syncedLogOffset, upTo);
      })
      .catch((err: unknown) => {
        this.fail(err, []);
        throw this.failure ?? new Error('fsync failed');
      })
      .finally(() => {
        this.syncing = null;
      });
    this.syncing = syncing;
    return syncing;
  }

  /** Whether the failure is one `clearFailure` may undo: a write or fsync refused by a full or
   *  read-only disk (ENOSPC, EDQUOT, EROFS), never EIO, never a failed dispatch. */
  get resumable(): boolean {
    return this.failure !== null && this.failureResumable;
  }

  /** End of what the last finished round acknowledged. */
  get acknowledgedLogOffset(): number {
    return this.ackedLogOffset;
  }

  /** End of the bytes written, fdatasynced and acknowledged: no write or sync below it is still
   *  to come, so a segment that ends at or below it is done with (retention may delete it). */
  get settledLogOffset(): number {
    return Math.min(this.ackedLogOffset, this.syncedLogOffset);
  }

  /** Takes appends again after a resumable failure, from `ackedLogOffset` (the caller has cut the
   *  files back to it). Only when nothing is being written. */
  clearFailure(): void {
    if (this.writing || this.queue.length > 0) throw new Error('group commit still writing');
    this.failure = null;
    this.failureResumable = false;
    this.unsynced.clear();
    this.resetEnd(this.ackedLogOffset);
    this.options.logger?.info(
      { store: this.options.name, logOffset: this.ackedLogOffset },
      'store writable again: appends resume',
    );
  }

  private fail(err: unknown, round: R[], stage: 'write' | 'dispatch' = 'write'): void {
    if (this.failure === null) {
      this.failureResumable = stage === 'write' && isDiskFullOrReadOnly(err);
      this.failure = new WharfError('IoError', `${this.options.name} write or fsync failed`, {
        cause: err,
      });
      this.options.logger?.error(
        { err, store: this.options.name },
        this.failureResumable
          ? 'store write failed: disk full or read-only; refusing appends until space returns'
          : 'store write or fsync failed: refusing further appends until reopened',
      );
    }
    const queued = this.queue;
    this.queue = [];
    this.rejectAll(round, this.failure);
    this.rejectAll(queued, this.failure);
    const waiters = this.positionWaiters;
    this.positionWaiters = [];
    for (const w of waiters) w.reject(this.failure);
  }

  private rejectAll(requests: R[], err: WharfError): void {
    for (const request of requests) {
      this.pendingBytes -= request.bytes;
      request.done(err);
    }
  }

  /** Resolves when nothing is queued, being written or being dispatched. */
  drain(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    if (this.writing || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Refuses new requests, waits for the queued ones, syncs (async policy) and stops the timer. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.drain();
    if (this.failure === null) await this.syncNow();
  }
}
