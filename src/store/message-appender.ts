// The message side of an append (RocketMQ's putMessage before the commit log): checks each message
// (size, queue id), refuses what the group commit or the disk watermark refuses, stamps a store
// time that never goes back, assigns queue offsets as the commit log encodes the records, and
// hands the durable round to the dispatcher. One path for one message or many. Invariant: queue
// offsets are assigned synchronously, in call order, while the records are placed, so
// assignment order is log order.
import { WharfError } from '../errors.js';
import type { CommitLog, FrameWriter } from './commit-log.js';
import type { CommitRequest } from './group-commit.js';
import type { QueueTable } from './queue-table.js';
import type { ReadCache } from './read-cache.js';
import type { DispatchRecord } from './record.js';
import { encodeMessage, isBlankFrame, measureMessage } from './record.js';
import type { DiskWatermark } from './retention.js';
import type { AppendMessage, AppendResult } from './types.js';

/** A commit-log request of the message store: its records, for the dispatcher once durable. */
export interface StoreRequest extends CommitRequest {
  records: DispatchRecord[];
}

export interface MessageAppenderParts {
  log: CommitLog<StoreRequest>;
  queues: QueueTable;
  disk: DiskWatermark;
  readCache: ReadCache;
  maxRecordBytes: number;
  /** retryAfterMs of a DiskFull refusal: when the watermark is measured again. */
  diskCheckIntervalMs: number;
  /** Store time of the last record in the log (recovery). */
  lastStoreTimestampMs: number;
  /** Dispatches a durable round's records (up to `endLogOffset`) in log order. */
  dispatch(records: DispatchRecord[], endLogOffset: number): Promise<void>;
}

export class MessageAppender implements FrameWriter {
  /** Messages taken since open. */
  appendedMessages = 0;
  private lastStoreTimestampMs: number;
  /** Record sizes of the append being placed (reused: appends are synchronous). */
  private sizes: number[] = [];
  // The append being encoded (set for the synchronous span of `append` only).
  private messages: readonly AppendMessage[] = [];
  private records: DispatchRecord[] = [];
  private results: AppendResult[] = [];
  private storeTimestampMs = 0;

  constructor(private readonly parts: MessageAppenderParts) {
    this.lastStoreTimestampMs = parts.lastStoreTimestampMs;
  }

  /** Store time of the last record placed (store time never goes back). */
  get lastStoreTimestamp(): number {
    return this.lastStoreTimestampMs;
  }

  /** Appends `messages` (at least one); throws the refusal of any of them before placing any. */
  append(messages: readonly AppendMessage[]): Promise<AppendResult[]> {
    const { log, disk } = this.parts;
    const count = messages.length;
    const sizes = this.sizes;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const size = this.measure(messages[i]);
      sizes[i] = size;
      total += size;
    }
    log.checkAccept(total);
    this.refuseIfDiskFull(total);
    const now = Date.now();
    const storeTimestampMs = now > this.lastStoreTimestampMs ? now : this.lastStoreTimestampMs;
    this.lastStoreTimestampMs = storeTimestampMs;
    const records = new Array<DispatchRecord>(count);
    const results = new Array<AppendResult>(count);
    this.messages = messages;
    this.records = records;
    this.results = results;
    this.storeTimestampMs = storeTimestampMs;
    return new Promise((resolve, reject) => {
      try {
        log.append(
          {
            chunks: [],
            bytes: total,
            records,
            done: (err) => (err === null ? resolve(results) : reject(err)),
          },
          sizes,
          count,
          this,
        );
      } finally {
        this.messages = [];
        this.records = [];
        this.results = [];
      }
      disk.wrote(total);
      this.appendedMessages += count;
    });
  }

  /** Encodes message `index` of the append being placed and assigns its queue offset. */
  writeFrame(index: number, buffer: Buffer, pos: number, size: number, logOffset: number): void {
    const m = this.messages[index];
    const storeTimestampMs = this.storeTimestampMs;
    const queueOffset = this.parts.queues.getOrCreate(m.topic, m.queueId).assignQueueOffset();
    const tagHashValue = encodeMessage(buffer, pos, size, m, {
      logOffset,
      queueOffset,
      storeTimestampMs,
    });
    this.records[index] = {
      topic: m.topic,
      queueId: m.queueId,
      queueOffset,
      logOffset,
      size,
      tagHash: tagHashValue,
      storeTimestampMs,
      keys: m.keys !== undefined && m.keys.length > 0 ? m.keys : undefined,
    };
    this.results[index] = { logOffset, queueOffset, size, storeTimestampMs };
  }

  /**
   * A round just made durable: its records (not blank frames) join the cache of recent records,
   * then go to the dispatcher; the round's appends resolve once it is done.
   */
  afterDurable(round: readonly StoreRequest[]): Promise<void> {
    let records: DispatchRecord[];
    if (round.length === 1) {
      records = round[0].records;
    } else {
      records = [];
      for (const request of round) for (const r of request.records) records.push(r);
    }
    const readCache = this.parts.readCache;
    let end = 0;
    for (const request of round) {
      for (const chunk of request.chunks) {
        if (!isBlankFrame(chunk.buffer, 0)) readCache.add(chunk.logOffset, chunk.buffer);
        end = chunk.logOffset + chunk.buffer.length;
      }
    }
    return this.parts.dispatch(records, end);
  }

  /** A record's size, or the typed error for a message the store refuses. */
  private measure(m: AppendMessage): number {
    const maxRecordBytes = this.parts.maxRecordBytes;
    const size = measureMessage(m);
    if (typeof size === 'string') throw new WharfError('InvalidArgument', size);
    if (size > maxRecordBytes) {
      throw new WharfError(
        'RecordTooLarge',
        `record of ${size} bytes over the store limit of ${maxRecordBytes}`,
        { details: { size, maxRecordBytes } },
      );
    }
    if (!Number.isInteger(m.queueId) || m.queueId < 0 || m.queueId > 0xffffffff) {
      throw new WharfError('InvalidArgument', 'queueId must be a 32-bit unsigned integer');
    }
    return size;
  }

  private refuseIfDiskFull(bytes: number): void {
    const disk = this.parts.disk;
    if (disk.refuses(bytes)) {
      throw new WharfError('DiskFull', 'free disk space is below the watermark', {
        retryAfterMs: this.parts.diskCheckIntervalMs,
        details: { freeBytes: disk.freeBytes, minFreeDiskBytes: disk.minFreeDiskBytes },
      });
    }
  }
}
