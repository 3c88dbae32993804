// The MessageStore facade contract (implemented by message-store.ts).
import type {
  AppendMessage,
  AppendResult,
  FlushPolicy,
  QueueEntriesResult,
  QueueOffsets,
  ReadQueueOptions,
  ReadQueueResult,
  RecoveryReport,
  StoreLogger,
  StoredMessage,
} from './types.js';

export interface MessageStoreOptions {
  dir: string;
  /** Commit-log segment size; default 1 GiB. */
  segmentBytes?: number;
  /** Default `sync`. */
  flushPolicy?: FlushPolicy;
  /** `async` policy: fdatasync at this interval; default 200 ms. */
  asyncFlushIntervalMs?: number;
  /** Bound of the group-commit queue (bytes of records waiting); default 64 MiB. */
  maxPendingAppendBytes?: number;
  /** Largest record accepted; default 4 MiB + 64 KiB of header room. */
  maxRecordBytes?: number;
  /** Entries per consume-queue segment file; default 300_000. */
  consumeQueueSegmentEntries?: number;
  /** Deleted topics the deletion log holds before it is folded into its snapshot; default 4096. */
  deletionLogLines?: number;
  /** Whole log segments older than this are deleted; default 72 h. */
  retentionMs?: number;
  /** The lowest logOffset the store's owner still needs (a pending delayed message): retention
   *  keeps the segment holding it and every later one, whatever their age. Asked once per
   *  retention run; unset: no floor. */
  retentionFloor?: () => Promise<number>;
  /** Appends are refused with DiskFull when free space drops below this; default 1 GiB, never
   *  below a 16 MiB floor (the reserve for journal, consume-queue and checkpoint writes). */
  minFreeDiskBytes?: number;
  /** Byte limit of the in-memory read cache of recent records; default 64 MiB. */
  readCacheBytes?: number;
  /** Byte limit of the consume-queue page cache (24 KiB pages read ahead and kept for readers
   *  of a queue, shared by every queue); 0 turns it off; default 16 MiB. */
  consumeQueueCacheBytes?: number;
  /** Byte limit of the commit-log read-ahead cache: blocks of the log read for queue readers
   *  that miss the recent-record cache (a backlog drain), shared by every queue; 0 turns it off;
   *  default 32 MiB. */
  readAheadCacheBytes?: number;
  /** Bytes of one read-ahead block (one pread; at least 4 KiB); default 1 MiB. */
  readAheadBlockBytes?: number;
  /** Bound on open file handles across segments, consume queues and indexes; default 256. */
  maxOpenFiles?: number;
  /** How often derived files are fdatasynced and the checkpoint written; default 1000 ms. */
  checkpointIntervalMs?: number;
  /** How often retention looks for expired segments; default 60 s. */
  retentionCheckIntervalMs?: number;
  /** How often free disk space is measured with statfs; default 1000 ms. */
  diskCheckIntervalMs?: number;
  /** Hash slots per key-index file (4 bytes each, the active file's in memory); default 1M. */
  keyIndexSlots?: number;
  /** Entries per key-index file (16 bytes each); default 4M. */
  keyIndexEntriesPerFile?: number;
  /** Segment size of the state journal; default 64 MiB. */
  journalSegmentBytes?: number;
  logger?: StoreLogger;
  /** Told of every group-commit round of the commit log (metrics). */
  commitObserver?: CommitObserver;
}

/** One group-commit round: how many appends it carried, their bytes, and how long its writes and
 *  its fdatasync took (syncMs null under the `async` policy, which syncs on an interval). */
export interface CommitRound {
  appends: number;
  bytes: number;
  writeMs: number;
  syncMs: number | null;
}

/** Receives each round's figures; must not throw or block (it runs on the append path). */
export interface CommitObserver {
  round(round: CommitRound): void;
}

export interface StoreHealth {
  writable: boolean;
  /** Why not, for operators (readiness detail, logs). */
  detail?: string;
}

export interface MessageStore {
  readonly recovery: RecoveryReport;
  /** Its owner found records lost past the log's end (state pointing past a queue's end after a
   *  crash under the async flush): the next records start a new segment, never at a lost
   *  record's log position (its message id). Call before the first append. */
  sealAfterLoss(): Promise<void>;
  /** Durable per the flush policy when it resolves; results in input order. Throws WharfError
   *  (AppendQueueFull, DiskFull, RecordTooLarge, StoreClosed, IoError). */
  append(messages: readonly AppendMessage[]): Promise<AppendResult[]>;
  readQueue(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    options: ReadQueueOptions,
  ): Promise<ReadQueueResult>;
  /** At most `count` entries of a queue from `fromQueueOffset`, without reading their records
   *  (positions and store times only: a few bytes each, whatever the bodies weigh). */
  queueEntries(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    count: number,
  ): Promise<QueueEntriesResult>;
  /** One message by its commit-log position; null when no record starts there or it expired. */
  readMessage(logOffset: number): Promise<StoredMessage | null>;
  /** readMessage of many positions, answers in their order (nearby records read together). */
  readMessages(logOffsets: readonly number[]): Promise<(StoredMessage | null)[]>;
  queueOffsets(topic: string, queueId: number): QueueOffsets;
  /** Queue ids that have entries for this topic. */
  queueIds(topic: string): number[];
  /** Every topic with a consume queue (deleted ones are gone). */
  topics(): string[];
  /** First queue offset whose store time is >= timestampMs (maxQueueOffset when none). */
  queueOffsetByTime(topic: string, queueId: number, timestampMs: number): Promise<number>;
  /** Messages of a topic carrying this key, newest first, at most `limit`. */
  queryByKey(topic: string, key: string, limit: number): Promise<StoredMessage[]>;
  /** The same, one at a time, for a reader that keeps little of each (newest first). */
  messagesByKey(topic: string, key: string): AsyncGenerator<StoredMessage>;
  /** Forget a topic's consume queues and key entries (its log records expire with retention). */
  deleteTopic(topic: string): Promise<void>;
  /** Whether `topic` was deleted after the record at `logOffset` was appended, i.e. what that
   *  record refers to of the topic belongs to a deleted incarnation (durable, like the delete). */
  deletedAfter(topic: string, logOffset: number): boolean;
  /** Store time of the last record in the log (or appended since open): it never goes back,
   *  across restarts too, whatever the wall clock does. */
  lastStoreTimestampMs(): number;
  /** Called after each durable dispatch with the queue's new maxQueueOffset. */
  onDispatch(
    listener: (topic: string, queueId: number, maxQueueOffset: number) => void,
  ): () => void;
  /** The broker's own durable state (offsets, receipts, acks, markers). */
  readonly journal: StateJournal;
  /** Log size, segment count, free disk, pending appends, cache hits: for stats and metrics. */
  stats(): Record<string, number>;
  /** Whether appends can be taken now (not failed, not closed, free disk above the watermark);
   *  reads are served either way. For readiness. */
  health(): StoreHealth;
  close(): Promise<void>;
}

/** What the journal hands back at open: the latest snapshot and every entry appended after it. */
export interface StateJournalRecovery {
  snapshot: Buffer | null;
  entries: AsyncIterable<Buffer>;
}

/**
 * A durable, compact log of opaque state entries (the broker decides their meaning), with the
 * commit log's guarantees: CRC-checked, group-committed, recovered after SIGKILL up to the last
 * acknowledged entry. Snapshots bound replay time and disk: entries before the latest snapshot
 * are deleted.
 */
export interface StateJournal {
  recover(): StateJournalRecovery;
  /** Resolves when the entries are durable (the journal uses the store's flush policy). */
  append(entries: readonly Buffer[]): Promise<void>;
  /** Atomically makes `snapshot` the new base: it reflects every entry appended before this call
   *  (the caller serializes synchronously), and replay after a restart starts from it. */
  writeSnapshot(snapshot: Buffer): Promise<void>;
  /** Bytes of entries appended since the latest snapshot (the broker snapshots past a limit). */
  bytesSinceSnapshot(): number;
}
