// The consume-queue formats on disk: the 24-byte entry and the names of a topic's directory. Pure;
// frozen by test/fixtures/store-formats-v1.json. Everything that reads or writes entry bytes goes
// through these functions (the dispatcher, the queue files, the queue reader).
//
// Entry layout (big-endian): logOffset u64 | size u32 | tagHash u32 | storeTimestampMs u64
// Directory: consumequeue/<topicDirName(topic)>/TOPIC (the topic's name), <queueId>/<files>.
import { createHash } from 'node:crypto';
import { readUInt64, writeUInt64 } from './record.js';

export const CQ_ENTRY_BYTES = 24;
/** The file in a topic's directory holding the topic's name. */
export const TOPIC_FILE = 'TOPIC';

export interface ConsumeQueueEntry {
  logOffset: number;
  size: number;
  tagHash: number;
  storeTimestampMs: number;
}

export function writeEntry(
  buf: Buffer,
  pos: number,
  logOffset: number,
  size: number,
  tagHashValue: number,
  storeTimestampMs: number,
): void {
  writeUInt64(buf, logOffset, pos);
  buf.writeUInt32BE(size, pos + 8);
  buf.writeUInt32BE(tagHashValue, pos + 12);
  writeUInt64(buf, storeTimestampMs, pos + 16);
}

export function readEntry(buf: Buffer, pos: number): ConsumeQueueEntry {
  return {
    logOffset: readUInt64(buf, pos),
    size: buf.readUInt32BE(pos + 8),
    tagHash: buf.readUInt32BE(pos + 12),
    storeTimestampMs: readUInt64(buf, pos + 16),
  };
}

// Field reads of entry `index` of a buffer of entries (the read path: no object per entry).

export function entryLogOffset(entries: Buffer, index: number): number {
  return readUInt64(entries, index * CQ_ENTRY_BYTES);
}

export function entrySize(entries: Buffer, index: number): number {
  return entries.readUInt32BE(index * CQ_ENTRY_BYTES + 8);
}

export function entryTagHash(entries: Buffer, index: number): number {
  return entries.readUInt32BE(index * CQ_ENTRY_BYTES + 12);
}

export function entryStoreTimestampMs(entries: Buffer, index: number): number {
  return readUInt64(entries, index * CQ_ENTRY_BYTES + 16);
}

/** A file-system-safe, collision-free directory name for a topic (the name itself is in TOPIC). */
export function topicDirName(topic: string): string {
  const readable = topic.replace(/[^A-Za-z0-9_-]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => '%' + b.toString(16).padStart(2, '0')).join(''),
  );
  if (readable.length <= 120) return readable;
  return 'h-' + createHash('sha256').update(topic).digest('hex');
}

/** The topic of a readable directory name (topicDirName's inverse), null for a hashed one. */
export function decodeTopicDir(name: string): string | null {
  if (name.startsWith('h-') || !/^(?:[A-Za-z0-9_-]|%[0-9a-f]{2})+$/.test(name)) return null;
  try {
    return decodeURIComponent(name);
  } catch {
    return null;
  }
}
