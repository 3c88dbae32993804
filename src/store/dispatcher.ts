// The dispatcher (RocketMQ's CommitLogDispatcher): turns durable message records into consume-
// queue entries and key-index entries, then makes them visible and wakes listeners. It runs only
// for records durable under the flush policy (after a group-commit round, or from the log at
// recovery), one batch at a time in log order, so a consumer never sees a message a crash can take
// back. Writing an entry again is idempotent (fixed position), which is what makes re-dispatch
// after a crash safe.
import type { ConsumeQueue } from './consume-queue.js';
import { CQ_ENTRY_BYTES, writeEntry } from './consume-queue.js';
import type { KeyIndex } from './key-index.js';
import type { QueueTable } from './queue-table.js';
import type { DispatchRecord } from './record.js';
import type { StoreLogger } from './types.js';

export type DispatchListener = (topic: string, queueId: number, maxQueueOffset: number) => void;

export class Dispatcher {
  /** Every record below this logOffset is dispatched. */
  dispatchedLogOffset: number;
  /** Files written since the last checkpoint (fdatasynced by it). */
  readonly dirty = new Set<string>();
  private readonly listeners = new Set<DispatchListener>();
  /** Queues holding dispatched entries in memory (written by flushQueues). */
  private readonly buffered = new Set<ConsumeQueue>();

  constructor(
    private readonly queues: QueueTable,
    private readonly keyIndex: KeyIndex,
    dispatchedLogOffset: number,
    private readonly logger?: StoreLogger,
  ) {
    this.dispatchedLogOffset = dispatchedLogOffset;
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
    options: { cqFromLogOffset?: number; indexFromLogOffset?: number; notify?: boolean } = {},
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
    const writes: Promise<void>[] = [];
    for (const [queue, list] of byQueue) writes.push(this.writeQueue(queue, list));
    if (endLogOffset >= indexFrom) writes.push(this.keyIndex.add(keyed, endLogOffset));
    await Promise.all(writes);
    this.dispatchedLogOffset = Math.max(this.dispatchedLogOffset, endLogOffset);
    for (const [queue, list] of byQueue) {
      const max = list[list.length - 1].queueOffset + 1;
      if (max > queue.maxQueueOffset) queue.maxQueueOffset = max;
      if (queue.nextQueueOffset < queue.maxQueueOffset)
        queue.nextQueueOffset = queue.maxQueueOffset;
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

  /** Stops tracking a deleted queue. */
  forget(queue: ConsumeQueue): void {
    this.buffered.delete(queue);
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
