// The store's public types: what goes into the commit log and what comes back out.
// Offsets are numbers: a logOffset is a byte position in the whole commit log (safe to 2^53,
// 9 PB), a queueOffset is an entry number in one consume queue (dense, from 0).

/** Record flags (one byte in the record). */
export const MessageFlags = {
  NONE: 0,
  /** Stored in the schedule topic, to be dispatched to its real queue at deliverAt. */
  DELAYED: 1 << 0,
  /** A half (transactional) message, invisible until committed. */
  HALF: 1 << 1,
  /** A copy made for a retry or a dead letter. */
  RETRY: 1 << 2,
  /** A broker-internal record (system topic). */
  SYSTEM: 1 << 3,
  /** The body is a sealed envelope (the broker's src/broker/body-seal.ts); opaque to the store. */
  SEALED: 1 << 4,
} as const;

export interface AppendMessage {
  /** Opaque topic name, at most 255 UTF-8 bytes; the broker prefixes tenant and instance. */
  topic: string;
  queueId: number;
  /** Empty string or absent: no tag. At most 255 UTF-8 bytes. */
  tag?: string;
  keys?: readonly string[];
  properties?: Readonly<Record<string, string>>;
  body: Buffer;
  bornTimestampMs: number;
  flags?: number;
  /** Delivery attempts already made (copies for retry / DLQ carry the count). */
  attempt?: number;
}

export interface AppendResult {
  logOffset: number;
  queueOffset: number;
  /** Bytes of the whole record in the commit log. */
  size: number;
  storeTimestampMs: number;
}

export interface StoredMessage {
  topic: string;
  queueId: number;
  queueOffset: number;
  logOffset: number;
  size: number;
  storeTimestampMs: number;
  bornTimestampMs: number;
  flags: number;
  attempt: number;
  tag: string;
  keys: string[];
  properties: Record<string, string>;
  body: Buffer;
}

/** A tag filter: `*` (everything) or a set of tags (`A||B`). */
export interface TagFilter {
  /** Accepted tags; empty means every message. */
  tags: ReadonlySet<string>;
}

export interface ReadQueueOptions {
  maxMessages: number;
  /**
   * At most this many bytes of bodies (at least one message is returned): a message that would
   * pass it is left for the next read, and records past it are not read.
   */
  maxBytes?: number;
  filter?: TagFilter;
}

export type ReadQueueStatus =
  /** At least one message, or only filtered-out entries were passed (nextQueueOffset moved). */
  | 'FOUND'
  /** fromQueueOffset is the queue's max: nothing yet. */
  | 'NO_MESSAGE'
  /** fromQueueOffset is below the queue's min (deleted by retention); nextQueueOffset = min. */
  | 'OFFSET_EXPIRED'
  /** fromQueueOffset is beyond the queue's max; nextQueueOffset = max. */
  | 'OFFSET_OVERFLOW';

export interface ReadQueueResult {
  status: ReadQueueStatus;
  /** Messages that passed the filter, in queue order. */
  messages: StoredMessage[];
  /** Where the next read should start: past every entry examined (filtered ones included). */
  nextQueueOffset: number;
  minQueueOffset: number;
  maxQueueOffset: number;
}

/** A consume-queue entry's position and store time: what a query by time merges before it reads
 *  the records of the page it keeps. */
export interface QueueEntryRef {
  queueOffset: number;
  logOffset: number;
  storeTimestampMs: number;
  /** Its record's bytes (more than its body's). */
  size: number;
}

export interface QueueEntriesResult {
  /** In queue order; entries whose records retention deleted are left out. */
  entries: QueueEntryRef[];
  /** Where the read started: `fromQueueOffset`, or the queue's min when that expired. */
  startQueueOffset: number;
  /** Past the last entry read. */
  nextQueueOffset: number;
  maxQueueOffset: number;
}

export interface QueueOffsets {
  /** First entry still readable. */
  minQueueOffset: number;
  /** Next entry to be assigned (= number of entries ever written). */
  maxQueueOffset: number;
}

export type FlushPolicy = 'sync' | 'async';

/** Minimal logger shape (pino's) so the store needs no logging package. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RecoveryReport {
  /** Bytes of commit log found valid. */
  logEndOffset: number;
  /** Whether the previous run stopped cleanly (no abort marker). */
  cleanShutdown: boolean;
  /** Bytes cut from the log tail (torn or corrupt records). */
  truncatedBytes: number;
  /** First damaged position, when recovery stopped at a corrupt record rather than the end. */
  corruption?: { logOffset: number; reason: string; quarantined: string[] };
  /** Records re-dispatched into consume queues and indexes. */
  redispatchedRecords: number;
  durationMs: number;
}
