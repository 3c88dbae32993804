// The dispatcher (RocketMQ's CommitLogDispatcher): turns durable message records into consume-
// queue entries and key-index entries, then makes them visible and wakes listeners. It runs only
// for records durable under the flush policy (after a group-commit round, or from the log at
// recovery), one batch at a time in log order, so a consumer never sees a message a crash can take
// back. Writing an entry again is idempotent (fixed position), which is what makes re-dispatch
// after a crash safe. At open, `Redispatcher` feeds it the log's records past the checkpoints.
import type { ConsumeQueue } from './consume-queue.js';
import { CQ_ENTRY_BYTES, writeEntry } from './consume-queue-entry.js';
import { eachLimited, PARALLEL_FILE_TASKS } from './each-limited.js';
import type { KeyIndex } from './key-index.js';
import type { QueueTable } from './queue-table.js';
import type { DispatchRecord, FrameKind } from './record.js';
import { readDispatchFields } from './record.js';
import type { StoreLogger } from './types.js';

export type DispatchListener = (topic: string, queueId: number, maxQueueOffset: number) => void;

export class Dispatcher {
  /** Every record below this logOffset is dispatched. */
  private dispatchedEnd: number;
  /** Files written since the last checkpoint (fdatasynced by it). */
  private readonly dirty = new Set<string>();
  private readonly listeners = new Set<DispatchListener>();
  /** Queues holding dispatched entries in memory (written by flushQueues). */
  private readonly buffered = new Set<ConsumeQueue>();

  constructor(
    private readonly queues: QueueTable,
    private readonly keyIndex: KeyIndex,
    dispatchedLogOffset: number,
    private readonly logger?: StoreLogger,
  ) {
    this.dispatchedEnd = dispatchedLogOffset;
  }

  /** Every record below this logOffset is dispatched (readable). */
  get dispatchedLogOffset(): number {
    return this.dispatchedEnd;
  }

  onDispatch(listener: DispatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Dispatches records (ascending logOffset). `indexFromLogOffset` skips key entries already in
   * the index (recovery); `notify` is false during recovery (no listener yet).
   */
  async dispatch(
    records: readonly DispatchRecord[],
    endLogOffset: number,
    options: {
      cqFromLogOffset?: number;
      indexFromLogOffset?: number;
      notify?: boolean;
      /** Recovery, when retention deleted records past the checkpoint: a queue's first record
       *  may lie past its written entries (ConsumeQueue.startAt). */
      startQueuesAtRecords?: boolean;
    } = {},
  ): Promise<void> {
    const cqFrom = options.cqFromLogOffset ?? 0;
    const byQueue = new Map<ConsumeQueue, DispatchRecord[]>();
    const keyed: DispatchRecord[] = [];
    const indexFrom = options.indexFromLogOffset ?? 0;
    for (const record of records) {
      if (this.queues.isDeleted(record.topic, record.logOffset)) continue;
      if (record.logOffset >= cqFrom) {
        const queue = this.queues.getOrCreate(record.topic, record.queueId);
        let list = byQueue.get(queue);
        if (list === undefined) {
          list = [];
          byQueue.set(queue, list);
        }
        list.push(record);
      }
      if (record.keys !== undefined && record.keys.length > 0 && record.logOffset >= indexFrom) {
        keyed.push(record);
      }
    }
    if (options.startQueuesAtRecords === true) {
      for (const [queue, list] of byQueue) {
        const skipped = queue.startAt(list[0].queueOffset);
        if (skipped > 0) {
          this.logger?.warn(
            { topic: queue.topic, queueId: queue.queueId, skipped, from: list[0].queueOffset },
            'consume queue starts at its first record left: retention deleted the ones before it since the last checkpoint',
          );
        }
      }
    }
    const writes: Promise<void>[] = [];
    for (const [queue, list] of byQueue) writes.push(this.writeQueue(queue, list));
    if (endLogOffset >= indexFrom) writes.push(this.keyIndex.add(keyed, endLogOffset));
    await Promise.all(writes);
    this.dispatchedEnd = Math.max(this.dispatchedEnd, endLogOffset);
    for (const [queue, list] of byQueue) {
      queue.markDispatched(list[list.length - 1].queueOffset + 1);
      if (options.notify !== false) this.notify(queue);
    }
  }

  private async writeQueue(queue: ConsumeQueue, list: DispatchRecord[]): Promise<void> {
    // Runs of consecutive queue offsets go out in one write each (normally the whole list).
    let start = 0;
    while (start < list.length) {
      let end = start + 1;
      while (end < list.length && list[end].queueOffset === list[end - 1].queueOffset + 1) end++;
      const entries = Buffer.allocUnsafe((end - start) * CQ_ENTRY_BYTES);
      for (let i = start; i < end; i++) {
        const r = list[i];
        writeEntry(
          entries,
          (i - start) * CQ_ENTRY_BYTES,
          r.logOffset,
          r.size,
          r.tagHash,
          r.storeTimestampMs,
        );
      }
      await queue.add(list[start].queueOffset, entries, this.dirty);
      this.buffered.add(queue);
      start = end;
    }
  }

  /** Writes every queue's buffered entries, waits for every write in flight and writes again the
   *  failed ones (before a checkpoint fdatasyncs them); throws if one still fails. Every queue
   *  with unwritten entries is waited for, not only those of the last rounds: a write that
   *  failed before an earlier, failed checkpoint must still hold back this one. */
  async flushQueues(): Promise<void> {
    const queues = [...this.buffered];
    this.buffered.clear();
    for (const queue of queues) await queue.flushTail(this.dirty);
    const unwritten = this.queues.all().filter((queue) => queue.hasUnwritten);
    await Promise.all(unwritten.map((queue) => queue.writeOut(this.dirty)));
  }

  /** The files and directories written since the last call (a checkpoint, after flushQueues),
   *  no longer listed: the checkpoint fdatasyncs them. */
  takeDirty(): string[] {
    const dirty = [...this.dirty];
    this.dirty.clear();
    return dirty;
  }

  /** Lists files as written again (a checkpoint could not sync them). */
  markWritten(paths: Iterable<string>): void {
    for (const path of paths) this.dirty.add(path);
  }

  /** Stops tracking a deleted queue (its files are being deleted: nothing to sync). */
  forget(queue: ConsumeQueue): void {
    this.buffered.delete(queue);
    for (const start of queue.fileStarts) this.dirty.delete(queue.filePath(start));
    this.dirty.delete(queue.dir);
  }

  /** Recovery: the log ends at `endLogOffset` (possibly below what the checkpoint had
   *  dispatched, after corruption): nothing past it is dispatched. */
  resetDispatched(endLogOffset: number): void {
    this.dispatchedEnd = endLogOffset;
  }

  private notify(queue: ConsumeQueue): void {
    for (const listener of this.listeners) {
      try {
        listener(queue.topic, queue.queueId, queue.maxQueueOffset);
      } catch (err) {
        this.logger?.error({ err }, 'onDispatch listener threw');
      }
    }
  }
}

/**
 * Re-dispatch at open (RocketMQ's reput at start): the commit log's recovery scan hands every
 * message frame to `onFrame` and calls `afterChunk` after each chunk; records past the consume
 * queues' or the key index's checkpoint are dispatched again, a chunk at a time, without
 * notifying. `finish` then aligns the queues with the recovered end of the log.
 */
export class Redispatcher {
  /** Records dispatched again. */
  redispatched = 0;
  /** Store time of the last message record scanned (store time never goes back). */
  lastStoreTimestampMs = 0;
  private pending: DispatchRecord[] = [];
  /** logOffset of the scan's first frame (-1: none yet). */
  private firstLogOffset = -1;
  private topicBytes = Buffer.alloc(0);
  private topic = '';

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly queues: QueueTable,
    private readonly cqFromLogOffset: number,
    private readonly indexFromLogOffset: number,
  ) {}

  /** Each valid frame of the scan (`buf` is reused by the scan: nothing of it is kept). */
  readonly onFrame = (
    buf: Buffer,
    pos: number,
    length: number,
    logOffset: number,
    kind: FrameKind,
  ): void => {
    if (this.firstLogOffset < 0) this.firstLogOffset = logOffset;
    if (kind !== 'message') return;
    const fields = readDispatchFields(buf, pos, length);
    if (fields === null) return;
    const tlen = fields.topicEnd - fields.topicStart;
    // Consecutive records mostly share their topic: one string for a run of them.
    if (
      tlen !== this.topicBytes.length ||
      buf.compare(this.topicBytes, 0, tlen, fields.topicStart, fields.topicEnd) !== 0
    ) {
      this.topicBytes = Buffer.from(buf.subarray(fields.topicStart, fields.topicEnd));
      this.topic = this.topicBytes.toString('utf8');
    }
    this.lastStoreTimestampMs = fields.storeTimestampMs;
    if (logOffset < this.cqFromLogOffset && logOffset < this.indexFromLogOffset) return;
    this.pending.push({
      topic: this.topic,
      queueId: fields.queueId,
      queueOffset: fields.queueOffset,
      logOffset,
      size: length,
      tagHash: fields.tagHash,
      storeTimestampMs: fields.storeTimestampMs,
      keys: fields.keys.length > 0 ? fields.keys : undefined,
    });
  };

  /** After each chunk of the scan: everything below `logOffset` was passed to onFrame. */
  readonly afterChunk = async (logOffset: number): Promise<void> => {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.redispatched += batch.length;
    await this.dispatcher.dispatch(batch, logOffset, {
      cqFromLogOffset: this.cqFromLogOffset,
      indexFromLogOffset: this.indexFromLogOffset,
      notify: false,
      // the log starts past the checkpoint: retention deleted records the queues had not written
      // yet (else a gap between a queue's entries and its first record is not explained: the
      // queue stays as it is and the open fails rather than hide live messages)
      startQueuesAtRecords: this.firstLogOffset > this.cqFromLogOffset,
    });
  };

  /** After the scan: the log ends at `endLogOffset` and starts at `logMinOffset`. */
  async finish(endLogOffset: number, logMinOffset: number): Promise<void> {
    if (endLogOffset < this.cqFromLogOffset) {
      // The log lost records the checkpoint had dispatched (corruption): forget their entries.
      await this.dispatcher.flushQueues();
      await eachLimited(this.queues.all(), PARALLEL_FILE_TASKS, (queue) =>
        queue.recoverTail(endLogOffset),
      );
    }
    this.dispatcher.resetDispatched(endLogOffset);
    await eachLimited(this.queues.all(), PARALLEL_FILE_TASKS, async (queue) => {
      queue.markDispatched(queue.maxQueueOffset);
      await queue.expireBelow(logMinOffset);
    });
  }
}
