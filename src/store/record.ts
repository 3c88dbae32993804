// The on-disk frame and message-record format of the commit log (and of the state journal, which
// reuses the frames). Pure: encode and decode touch no file; decode returns ok / incomplete /
// corrupt / unsupported as values. The layout below is frozen by test/fixtures/record-v1.json.
//
// Every frame (version 1), big-endian:
//    0  totalLength        u32  bytes of the whole frame, this field included
//    4  crc32c             u32  CRC32C (Castagnoli) of bytes 8..totalLength (blank: 8..20)
//    8  version            u8   1; anything else with a valid CRC is UnsupportedFormat
//    9  flags              u8   MessageFlags (bits 0..4; bit 4 SEALED: the body is an encrypted
//                               envelope, frozen by record-v1-sealed.json); bit 6 JOURNAL_ENTRY;
//                               bit 7 END_OF_SEGMENT
//   10  attempt            u16  delivery attempts already made (0 for non-messages)
//   12  logOffset          u64  the frame's own position in the log: recovery checks it, so stale or
//                               shifted bytes never pass as a record
// A blank (END_OF_SEGMENT) frame is those 20 bytes only; its totalLength reaches the segment end
// (like RocketMQ's BLANK_MAGIC), so the next frame starts the next segment.
// A journal entry (JOURNAL_ENTRY) is those 20 bytes then its opaque payload.
// A message record continues:
//   20  queueId            u32
//   24  queueOffset        u64  dense entry number in the (topic, queueId) consume queue
//   32  storeTimestampMs   u64  monotonic along the log
//   40  bornTimestampMs    u64
//   48  topicLength u8, topic (UTF-8) · tagLength u8, tag (UTF-8, empty = no tag)
//       keyCount u16, each: keyLength u16, key
//       propertyCount u16, each: nameLength u16, name, valueLength u32, value
//       bodyLength u32, body
// Tag hash (consume-queue entries): FNV-1a 32-bit over the tag's UTF-8 bytes, 0 mapped to 1;
// 0 means "no tag".
import { crc32c } from '@node-rs/crc32';
import type { AppendMessage, StoredMessage } from './types.js';

export const RECORD_VERSION = 1;
export const FRAME_HEADER_BYTES = 20;
export const MESSAGE_HEADER_BYTES = 48;
/** Bytes of a blank (end-of-segment) frame. */
export const BLANK_FRAME_BYTES = FRAME_HEADER_BYTES;
export const FLAG_JOURNAL_ENTRY = 1 << 6;
export const FLAG_END_OF_SEGMENT = 1 << 7;
/** Flags a message may carry (MessageFlags); the two high bits are the frame's. */
export const MESSAGE_FLAGS_MASK = 0x3f;
export const MAX_TOPIC_BYTES = 255;
export const MAX_TAG_BYTES = 255;

const TWO_POW_32 = 0x1_0000_0000;

export function writeUInt64(buf: Buffer, value: number, pos: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), pos);
  buf.writeUInt32BE(value >>> 0, pos + 4);
}

/** Big-endian u64 (below 2^53) at buf[pos]: plain byte reads, the hottest read of the store. */
export function readUInt64(buf: Buffer, pos: number): number {
  const last = buf[pos + 7];
  if (last === undefined || pos < 0) throw new RangeError(`no 8 bytes at ${pos}`);
  return (
    (buf[pos] * 0x1000000 + ((buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3])) *
      TWO_POW_32 +
    (buf[pos + 4] * 0x1000000 + ((buf[pos + 5] << 16) | (buf[pos + 6] << 8) | last))
  );
}

/** FNV-1a 32-bit over UTF-8 bytes; 0 is reserved for "no tag". */
export function hashBytes(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= buf[i];
    h = Math.imul(h, 0x01000193);
  }
  h >>>= 0;
  return h === 0 ? 1 : h;
}

export function tagHash(tag: string | undefined): number {
  if (tag === undefined || tag.length === 0) return 0;
  const bytes = Buffer.from(tag, 'utf8');
  return hashBytes(bytes, 0, bytes.length);
}

/** Bytes a message record takes, or a string saying which field is over its limit. */
export function measureMessage(message: AppendMessage): number | string {
  const topicBytes = Buffer.byteLength(message.topic, 'utf8');
  if (topicBytes === 0 || topicBytes > MAX_TOPIC_BYTES) return 'topic must be 1..255 UTF-8 bytes';
  const tagBytes = message.tag === undefined ? 0 : Buffer.byteLength(message.tag, 'utf8');
  if (tagBytes > MAX_TAG_BYTES) return 'tag over 255 UTF-8 bytes';
  let size = MESSAGE_HEADER_BYTES + 1 + topicBytes + 1 + tagBytes + 2 + 2 + 4 + message.body.length;
  const keys = message.keys;
  if (keys !== undefined) {
    if (keys.length > 0xffff) return 'too many keys';
    for (let i = 0; i < keys.length; i++) {
      const n = Buffer.byteLength(keys[i], 'utf8');
      if (n > 0xffff) return 'key over 65535 bytes';
      size += 2 + n;
    }
  }
  const properties = message.properties;
  if (properties !== undefined) {
    let count = 0;
    for (const name in properties) {
      const n = Buffer.byteLength(name, 'utf8');
      if (n > 0xffff) return 'property name over 65535 bytes';
      size += 2 + n + 4 + Buffer.byteLength(properties[name], 'utf8');
      count++;
    }
    if (count > 0xffff) return 'too many properties';
  }
  return size;
}

export interface MessagePosition {
  logOffset: number;
  queueOffset: number;
  storeTimestampMs: number;
}

/**
 * Writes the message record of `size` bytes (from measureMessage) at buf[pos], CRC included, and
 * returns the tag hash for its consume-queue entry.
 */
export function encodeMessage(
  buf: Buffer,
  pos: number,
  size: number,
  message: AppendMessage,
  where: MessagePosition,
): number {
  buf.writeUInt32BE(size, pos);
  buf[pos + 8] = RECORD_VERSION;
  buf[pos + 9] = (message.flags ?? 0) & MESSAGE_FLAGS_MASK;
  buf.writeUInt16BE((message.attempt ?? 0) & 0xffff, pos + 10);
  writeUInt64(buf, where.logOffset, pos + 12);
  buf.writeUInt32BE(message.queueId >>> 0, pos + 20);
  writeUInt64(buf, where.queueOffset, pos + 24);
  writeUInt64(buf, where.storeTimestampMs, pos + 32);
  writeUInt64(buf, Math.max(0, Math.trunc(message.bornTimestampMs)), pos + 40);
  let p = pos + MESSAGE_HEADER_BYTES;
  const topicLength = buf.write(message.topic, p + 1, 'utf8');
  buf[p] = topicLength;
  p += 1 + topicLength;
  let hash = 0;
  const tagLength = message.tag === undefined ? 0 : buf.write(message.tag, p + 1, 'utf8');
  buf[p] = tagLength;
  if (tagLength > 0) hash = hashBytes(buf, p + 1, p + 1 + tagLength);
  p += 1 + tagLength;
  const keys = message.keys;
  const keyCount = keys === undefined ? 0 : keys.length;
  buf.writeUInt16BE(keyCount, p);
  p += 2;
  for (let i = 0; i < keyCount; i++) {
    const n = buf.write(keys![i], p + 2, 'utf8');
    buf.writeUInt16BE(n, p);
    p += 2 + n;
  }
  const countPos = p;
  p += 2;
  let propertyCount = 0;
  const properties = message.properties;
  if (properties !== undefined) {
    for (const name in properties) {
      const n = buf.write(name, p + 2, 'utf8');
      buf.writeUInt16BE(n, p);
      p += 2 + n;
      const v = buf.write(properties[name], p + 4, 'utf8');
      buf.writeUInt32BE(v, p);
      p += 4 + v;
      propertyCount++;
    }
  }
  buf.writeUInt16BE(propertyCount, countPos);
  buf.writeUInt32BE(message.body.length, p);
  buf.set(message.body, p + 4);
  buf.writeUInt32BE(crc32c(buf.subarray(pos + 8, pos + size)), pos + 4);
  return hash;
}

/** Writes a blank frame at buf[pos] saying the segment ends `bytesToSegmentEnd` from logOffset. */
export function encodeBlank(
  buf: Buffer,
  pos: number,
  logOffset: number,
  bytesToSegmentEnd: number,
): void {
  buf.writeUInt32BE(bytesToSegmentEnd, pos);
  buf[pos + 8] = RECORD_VERSION;
  buf[pos + 9] = FLAG_END_OF_SEGMENT;
  buf.writeUInt16BE(0, pos + 10);
  writeUInt64(buf, logOffset, pos + 12);
  buf.writeUInt32BE(crc32c(buf.subarray(pos + 8, pos + FRAME_HEADER_BYTES)), pos + 4);
}

export function journalEntryBytes(payload: Buffer): number {
  return FRAME_HEADER_BYTES + payload.length;
}

export function encodeJournalEntry(
  buf: Buffer,
  pos: number,
  logOffset: number,
  payload: Buffer,
): void {
  const size = FRAME_HEADER_BYTES + payload.length;
  buf.writeUInt32BE(size, pos);
  buf[pos + 8] = RECORD_VERSION;
  buf[pos + 9] = FLAG_JOURNAL_ENTRY;
  buf.writeUInt16BE(0, pos + 10);
  writeUInt64(buf, logOffset, pos + 12);
  payload.copy(buf, pos + FRAME_HEADER_BYTES);
  buf.writeUInt32BE(crc32c(buf.subarray(pos + 8, pos + size)), pos + 4);
}

// Header fields of the frame at buf[pos] (at least FRAME_HEADER_BYTES there), unchecked: callers
// that trust them check the frame (checkFrame) before using anything else of it.

/** The frame's totalLength (a blank frame's reaches its segment's end). */
export function frameLength(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos);
}

/** The logOffset the frame records as its own position. */
export function frameLogOffset(buf: Buffer, pos: number): number {
  return readUInt64(buf, pos + 12);
}

/** Whether the frame is a blank (end-of-segment) frame. */
export function isBlankFrame(buf: Buffer, pos: number): boolean {
  return (buf[pos + 9] & FLAG_END_OF_SEGMENT) !== 0;
}

export type FrameKind = 'message' | 'blank' | 'journal';

export type FrameCheck =
  | { status: 'ok'; kind: FrameKind; length: number }
  | { status: 'incomplete'; needBytes: number }
  | { status: 'corrupt'; reason: string }
  | { status: 'unsupported'; version: number };

/**
 * Checks the frame at buf[pos..end) claimed to sit at `logOffset`: length, CRC, version and
 * position. A blank's length may run past `end` (it reaches the segment end). `verifyCrc` false
 * skips only the CRC, for bytes that never left this process since they were encoded and
 * checksummed (the cache of records just written); bytes read from a file are always verified.
 */
export function checkFrame(
  buf: Buffer,
  pos: number,
  end: number,
  logOffset: number,
  verifyCrc = true,
): FrameCheck {
  const available = end - pos;
  if (available < FRAME_HEADER_BYTES) {
    return { status: 'incomplete', needBytes: FRAME_HEADER_BYTES };
  }
  const totalLength = buf.readUInt32BE(pos);
  if (totalLength < FRAME_HEADER_BYTES) {
    return { status: 'corrupt', reason: `frame length ${totalLength} below the header` };
  }
  const flags = buf[pos + 9];
  const blank = (flags & FLAG_END_OF_SEGMENT) !== 0;
  const crcEnd = blank ? FRAME_HEADER_BYTES : totalLength;
  if (!blank && available < totalLength) return { status: 'incomplete', needBytes: totalLength };
  if (verifyCrc && crc32c(buf.subarray(pos + 8, pos + crcEnd)) !== buf.readUInt32BE(pos + 4)) {
    return { status: 'corrupt', reason: 'CRC mismatch' };
  }
  const version = buf[pos + 8];
  if (version !== RECORD_VERSION) return { status: 'unsupported', version };
  if (readUInt64(buf, pos + 12) !== logOffset) {
    return { status: 'corrupt', reason: 'frame position does not match its logOffset' };
  }
  if (blank) return { status: 'ok', kind: 'blank', length: totalLength };
  if ((flags & FLAG_JOURNAL_ENTRY) !== 0)
    return { status: 'ok', kind: 'journal', length: totalLength };
  if (totalLength < MESSAGE_HEADER_BYTES + 10) {
    return { status: 'corrupt', reason: 'message record shorter than its fixed fields' };
  }
  return { status: 'ok', kind: 'message', length: totalLength };
}

/** Decoded fixed fields of a checked message record, without strings or body. */
export interface MessageHeader {
  flags: number;
  attempt: number;
  queueId: number;
  queueOffset: number;
  storeTimestampMs: number;
  bornTimestampMs: number;
}

export type DecodeResult<T> =
  | { status: 'ok'; value: T; length: number }
  | { status: 'incomplete'; needBytes: number }
  | { status: 'corrupt'; reason: string }
  | { status: 'unsupported'; version: number };

/**
 * Decodes the message record at buf[pos..end) claimed to sit at logOffset. Strings are copied;
 * the body is a view into `buf` (callers copy when they keep `buf` alive).
 */
export function decodeMessage(
  buf: Buffer,
  pos: number,
  end: number,
  logOffset: number,
): DecodeResult<StoredMessage> {
  const check = checkFrame(buf, pos, end, logOffset);
  if (check.status !== 'ok') return check;
  if (check.kind !== 'message') return { status: 'corrupt', reason: `a ${check.kind} frame` };
  const message = decodeCheckedMessage(buf, pos, check.length, logOffset);
  return message === null
    ? { status: 'corrupt', reason: 'message fields overrun the record' }
    : { status: 'ok', value: message, length: check.length };
}

/**
 * Strings a reader expects, so that equal bytes reuse a string instead of decoding a new one: the
 * topic it reads, and the tag it saw last (updated as it decodes).
 */
export interface DecodeHints {
  readonly topic: string;
  readonly topicBytes: Buffer;
  tag: string;
  tagBytes: Buffer;
}

export function decodeHints(topic: string): DecodeHints {
  return { topic, topicBytes: Buffer.from(topic, 'utf8'), tag: '', tagBytes: Buffer.alloc(0) };
}

/** Whether buf[pos, pos + length) holds exactly the bytes of `ref`. */
function bytesEqual(buf: Buffer, pos: number, length: number, ref: Buffer): boolean {
  if (length !== ref.length) return false;
  if (length > 64) return buf.compare(ref, 0, length, pos, pos + length) === 0;
  for (let i = 0; i < length; i++) if (buf[pos + i] !== ref[i]) return false;
  return true;
}

/** Decodes a record whose frame already passed checkFrame; null if its fields overrun it. */
export function decodeCheckedMessage(
  buf: Buffer,
  pos: number,
  size: number,
  logOffset: number,
  hints?: DecodeHints,
): StoredMessage | null {
  const end = pos + size;
  let p = pos + MESSAGE_HEADER_BYTES;
  const topicLength = buf[p];
  p += 1;
  if (p + topicLength + 1 > end) return null;
  const topic =
    hints !== undefined && bytesEqual(buf, p, topicLength, hints.topicBytes)
      ? hints.topic
      : buf.toString('utf8', p, p + topicLength);
  p += topicLength;
  const tagLength = buf[p];
  p += 1;
  if (p + tagLength + 2 > end) return null;
  let tag = '';
  if (tagLength > 0) {
    if (hints === undefined) {
      tag = buf.toString('utf8', p, p + tagLength);
    } else if (bytesEqual(buf, p, tagLength, hints.tagBytes)) {
      tag = hints.tag;
    } else {
      tag = buf.toString('utf8', p, p + tagLength);
      hints.tag = tag;
      hints.tagBytes = Buffer.from(buf.subarray(p, p + tagLength));
    }
  }
  p += tagLength;
  const keyCount = buf.readUInt16BE(p);
  p += 2;
  const keys: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    if (p + 2 > end) return null;
    const n = buf.readUInt16BE(p);
    p += 2;
    if (p + n > end) return null;
    keys.push(buf.toString('utf8', p, p + n));
    p += n;
  }
  if (p + 2 > end) return null;
  const propertyCount = buf.readUInt16BE(p);
  p += 2;
  const properties: Record<string, string> = {};
  for (let i = 0; i < propertyCount; i++) {
    if (p + 2 > end) return null;
    const n = buf.readUInt16BE(p);
    p += 2;
    if (p + n + 4 > end) return null;
    const name = buf.toString('utf8', p, p + n);
    p += n;
    const v = buf.readUInt32BE(p);
    p += 4;
    if (p + v > end) return null;
    properties[name] = buf.toString('utf8', p, p + v);
    p += v;
  }
  if (p + 4 > end) return null;
  const bodyLength = buf.readUInt32BE(p);
  p += 4;
  if (p + bodyLength !== end) return null;
  return {
    topic,
    queueId: buf.readUInt32BE(pos + 20),
    queueOffset: readUInt64(buf, pos + 24),
    logOffset,
    size,
    storeTimestampMs: readUInt64(buf, pos + 32),
    bornTimestampMs: readUInt64(buf, pos + 40),
    flags: buf[pos + 9] & MESSAGE_FLAGS_MASK,
    attempt: buf.readUInt16BE(pos + 10),
    tag,
    keys,
    properties,
    body: buf.subarray(p, end),
  };
}

/** The fields a dispatcher needs from a checked record, read without decoding the body. */
export interface DispatchFields {
  queueId: number;
  queueOffset: number;
  storeTimestampMs: number;
  tagHash: number;
  keys: string[];
  /** Topic bytes: buf[topicStart, topicEnd). */
  topicStart: number;
  topicEnd: number;
}

export function readDispatchFields(buf: Buffer, pos: number, size: number): DispatchFields | null {
  const end = pos + size;
  let p = pos + MESSAGE_HEADER_BYTES;
  const topicStart = p + 1;
  const topicEnd = topicStart + buf[p];
  p = topicEnd;
  if (p + 1 > end) return null;
  const tagLength = buf[p];
  const tagHashValue = tagLength === 0 ? 0 : hashBytes(buf, p + 1, p + 1 + tagLength);
  p += 1 + tagLength;
  if (p + 2 > end) return null;
  const keyCount = buf.readUInt16BE(p);
  p += 2;
  const keys: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    if (p + 2 > end) return null;
    const n = buf.readUInt16BE(p);
    p += 2;
    if (p + n > end) return null;
    keys.push(buf.toString('utf8', p, p + n));
    p += n;
  }
  return {
    queueId: buf.readUInt32BE(pos + 20),
    queueOffset: readUInt64(buf, pos + 24),
    storeTimestampMs: readUInt64(buf, pos + 32),
    tagHash: tagHashValue,
    keys,
    topicStart,
    topicEnd,
  };
}

/** The tag of a checked record, compared without decoding it (tag filter after a hash match). */
export function recordTagEquals(buf: Buffer, pos: number, tag: Buffer): boolean {
  const p = pos + MESSAGE_HEADER_BYTES + 1 + buf[pos + MESSAGE_HEADER_BYTES];
  const tagLength = buf[p];
  return (
    tagLength === tag.length && buf.compare(tag, 0, tag.length, p + 1, p + 1 + tagLength) === 0
  );
}

/** What the dispatcher needs of one durable message record (from an append or a log scan). */
export interface DispatchRecord {
  topic: string;
  queueId: number;
  queueOffset: number;
  logOffset: number;
  size: number;
  tagHash: number;
  storeTimestampMs: number;
  keys: readonly string[] | undefined;
}
