// The store's options with their defaults and floors applied (MessageStoreOptions documents each).
// Invariants: a record always fits in a segment with room for a roll's blank frame; the free-disk
// watermark never goes below MIN_FREE_DISK_FLOOR_BYTES.
import type { CommitObserver, MessageStoreOptions } from './message-store-api.js';
import { BLANK_FRAME_BYTES } from './record.js';
import type { StoreLogger } from './types.js';

/** The least free space kept below any configured watermark (WHARF_MIN_FREE_DISK_MB=0 too). */
export const MIN_FREE_DISK_FLOOR_BYTES = 16 * 1024 * 1024;

export interface ResolvedOptions {
  dir: string;
  segmentBytes: number;
  flushPolicy: 'sync' | 'async';
  asyncFlushIntervalMs: number;
  maxPendingAppendBytes: number;
  maxRecordBytes: number;
  consumeQueueSegmentEntries: number;
  deletionLogLines: number;
  retentionMs: number;
  retentionFloor: (() => Promise<number>) | undefined;
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
  commitObserver: CommitObserver | undefined;
}

export function resolveOptions(o: MessageStoreOptions): ResolvedOptions {
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
    deletionLogLines: o.deletionLogLines ?? 4096,
    retentionMs: o.retentionMs ?? 72 * 3600 * 1000,
    retentionFloor: o.retentionFloor,
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
    commitObserver: o.commitObserver,
  };
}
