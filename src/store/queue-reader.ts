// Reads of messages (RocketMQ's getMessage): a queue's next messages (`readQueue`) and the record at
// one position (`readMessage`). A queue read takes the consume-queue entries (read only through
// the entry codec), plans spans of records (the cache of recent writes, read-ahead blocks, or one
// pread per run of nearby records), fetches them together, reads the next blocks ahead, and
// decodes with the checks of the record codec. Nothing here writes state but the caches and a
// queue's minQueueOffset when retention has passed it.
import { WharfError } from '../errors.js';
import type { CommitLog } from './commit-log.js';
import {
  entryLogOffset,
  entrySize,
  entryStoreTimestampMs,
  entryTagHash,
} from './consume-queue-entry.js';
import type { Dispatcher } from './dispatcher.js';
import type { LogBlock, LogBlockCache } from './log-block-cache.js';
import type { QueueTable } from './queue-table.js';
import type { ReadCache } from './read-cache.js';
import type { DecodeHints } from './record.js';
import {
  FRAME_HEADER_BYTES,
  MESSAGE_HEADER_BYTES,
  checkFrame,
  decodeCheckedMessage,
  decodeHints,
  frameLength,
  frameLogOffset,
} from './record.js';
import { TagMatcher } from './tag-matcher.js';
import type {
  QueueEntriesResult,
  QueueEntryRef,
  ReadQueueOptions,
  ReadQueueResult,
  StoreLogger,
  StoredMessage,
} from './types.js';

/** Largest coalesced read of adjacent records (one pread). */
const MAX_COALESCED_READ_BYTES = 2 * 1024 * 1024;
/** Largest run of other records read along between two wanted ones. */
const MAX_COALESCED_GAP_BYTES = 64 * 1024;
/** readMessages: bytes read per wanted record (a longer one is read again on its own) … */
const RECORD_GUESS_BYTES = 1024;
/** … and the most bytes between two wanted records read along rather than a second pread. */
const MAX_BATCH_GAP_BYTES = 8 * 1024;
/** Entries examined per readQueue call when a tag filter skips messages. */
const MAX_FILTER_SCAN_ENTRIES = 4096;
/** Most blocks fetched ahead after one read. */
const MAX_PREFETCH_BLOCKS = 4;

const EMPTY = Buffer.alloc(0);

/** A read-ahead block a read wants: its capacity and the end of the bytes it must hold. */
interface BlockNeed {
  capacity: number;
  needEnd: number;
}

function needBlock(
  needs: Map<number, BlockNeed>,
  start: number,
  capacity: number,
  needEnd: number,
): void {
  const need = needs.get(start);
  if (need === undefined) needs.set(start, { capacity, needEnd });
  else if (needEnd > need.needEnd) need.needEnd = needEnd;
}

/** Records of one readQueue fetched together: from the cache of recent records, a read-ahead
 *  block, two blocks (a record across their boundary) or their own pread. */
interface ReadSpan {
  /** candidates[from, to) are in this span. */
  from: number;
  to: number;
  /** logOffset of buffer[0]. */
  base: number;
  buffer: Buffer;
  source: 'memory' | 'block' | 'straddle' | 'read';
  blockStart?: number;
  nextStart?: number;
  /** End of the last record wanted from the block(s). */
  needEnd?: number;
}

/** What a reader uses of the commit log. */
export type LogView = Pick<CommitLog, 'read' | 'minLogOffset' | 'segmentStart' | 'segmentEnd'>;

export interface QueueReaderParts {
  queues: QueueTable;
  log: LogView;
  dispatcher: Dispatcher;
  readCache: ReadCache;
  /** Read-ahead blocks of the log; null when turned off. */
  blocks: LogBlockCache | null;
  segmentBytes: number;
  blockBytes: number;
  maxRecordBytes: number;
  logger?: StoreLogger;
}

/** What a read passes over: a record failing its check, an entry pointing at no record. */
function isDamage(error: unknown): error is WharfError {
  return (
    error instanceof WharfError && (error.code === 'CorruptRecord' || error.code === 'CorruptIndex')
  );
}

/** Damaged positions reported at most (each once); past it, only counted. */
const MAX_REPORTED_DAMAGE = 10_000;

export class QueueReader {
  /** Messages passed over as damaged (store stats: corruptMessagesSkipped). */
  skippedDamaged = 0;
  private readonly reported = new Set<number>();
  private overflowReported = false;

  constructor(private readonly p: QueueReaderParts) {}

  /** A damaged message a read passed over: logged once per position as an error and counted
   *  (past MAX_REPORTED_DAMAGE positions, one error says so and the rest are not tracked). */
  private damaged(
    code: string,
    reason: string,
    topic: string,
    queueId: number,
    queueOffset: number,
    logOffset: number,
  ): void {
    if (this.reported.has(logOffset)) return;
    if (this.reported.size >= MAX_REPORTED_DAMAGE) {
      if (!this.overflowReported) {
        this.overflowReported = true;
        this.p.logger?.error(
          { reported: this.reported.size },
          'more damaged messages than are tracked: the rest are passed over unreported',
        );
      }
      return;
    }
    this.reported.add(logOffset);
    this.skippedDamaged++;
    this.p.logger?.error(
      { code, topic, queueId, queueOffset, logOffset, err: reason },
      'a damaged message was passed over: it is not delivered (restore the data dir from a backup to get it back)',
    );
  }

  /** The record of one entry read again on its own from the file, checked; null: damaged. */
  private async reread(
    logOffset: number,
    size: number,
    hints: DecodeHints,
    queueId: number,
    queueOffset: number,
  ): Promise<{ buffer: Buffer; message: StoredMessage } | null> {
    if (logOffset < this.p.log.minLogOffset || size <= 0 || size > this.p.maxRecordBytes) {
      return null;
    }
    const buffer = Buffer.allocUnsafe(size);
    const n = await this.p.log.read(buffer, 0, size, logOffset);
    if (n < size) return null;
    try {
      const message = this.decodeAt(buffer, 0, size, logOffset, hints, queueId, queueOffset, true);
      return { buffer, message };
    } catch (error) {
      if (isDamage(error)) return null;
      throw error;
    }
  }

  async readQueue(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    options: ReadQueueOptions,
  ): Promise<ReadQueueResult> {
    const queue = this.p.queues.get(topic, queueId);
    const minQueueOffset = queue?.minQueueOffset ?? 0;
    const maxQueueOffset = queue?.maxQueueOffset ?? 0;
    const answer = (
      status: ReadQueueResult['status'],
      nextQueueOffset: number,
      messages: StoredMessage[] = [],
    ): ReadQueueResult => ({
      status,
      messages,
      nextQueueOffset,
      minQueueOffset: queue?.minQueueOffset ?? minQueueOffset,
      maxQueueOffset,
    });
    if (fromQueueOffset < minQueueOffset) return answer('OFFSET_EXPIRED', minQueueOffset);
    if (fromQueueOffset === maxQueueOffset) return answer('NO_MESSAGE', maxQueueOffset);
    if (fromQueueOffset > maxQueueOffset) return answer('OFFSET_OVERFLOW', maxQueueOffset);
    const q = queue!;
    const maxMessages = Math.max(1, Math.floor(options.maxMessages));
    const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    const tags = options.filter?.tags;
    const filter = tags !== undefined && tags.size > 0 ? new TagMatcher(tags) : null;
    const scan = Math.min(
      maxQueueOffset - fromQueueOffset,
      filter === null ? maxMessages : Math.max(maxMessages, MAX_FILTER_SCAN_ENTRIES),
    );
    const entries = await q.readEntries(fromQueueOffset, scan);
    const logMinOffset = this.p.log.minLogOffset;
    if (entryLogOffset(entries, 0) < logMinOffset) {
      // Retention deleted the records under this queue's head since the last pass.
      const min = await q.advanceMinTo(logMinOffset);
      if (fromQueueOffset < min) return answer('OFFSET_EXPIRED', min);
    }
    const candidates: number[] = [];
    let scanned = scan;
    // a record's size bounds its body's: records past the byte budget are not even read
    let plannedBytes = 0;
    for (let i = 0; i < scan; i++) {
      if (filter !== null && !filter.mayMatch(entryTagHash(entries, i))) {
        continue;
      }
      plannedBytes += entrySize(entries, i);
      if (candidates.length > 0 && plannedBytes > maxBytes) {
        scanned = i;
        break;
      }
      candidates.push(i);
      if (candidates.length >= maxMessages) {
        scanned = i + 1;
        break;
      }
    }
    // Spans of records to fetch: from the cache of recent records; from read-ahead blocks of the
    // log (a multi-message read, or a block already cached); else one pread per run of nearby
    // records. Every block and pread is in flight together.
    const logMin = this.p.log.minLogOffset;
    const readableEnd = this.p.dispatcher.dispatchedLogOffset;
    const needs = new Map<number, BlockNeed>();
    const spans = this.planSpans(entries, candidates, needs);
    const fetched = await this.fetchSpans(spans, needs, logMin, readableEnd);
    const reads = fetched.reads;
    if (fetched.lastBlock !== null && fromQueueOffset + scanned < maxQueueOffset) {
      this.readAheadAfter(
        fetched.lastBlock,
        fetched.lastNeedEnd,
        entryLogOffset(entries, candidates[0]),
        readableEnd,
      );
    }
    const messages: StoredMessage[] = [];
    const hints = decodeHints(topic);
    let nextQueueOffset = fromQueueOffset + scanned;
    let bodyBytes = 0;
    outer: for (let s = 0; s < spans.length; s++) {
      const span = spans[s];
      const buffer = span.buffer;
      const got = reads[s];
      if (got < buffer.length && span.base < this.p.log.minLogOffset) {
        // Retention deleted these records while we read: they are expired now.
        const min = await q.advanceMinTo(this.p.log.minLogOffset);
        if (messages.length === 0) return answer('OFFSET_EXPIRED', min);
        nextQueueOffset = messages[messages.length - 1].queueOffset + 1;
        break;
      }
      for (let k = span.from; k < span.to; k++) {
        const index = candidates[k];
        const logOffset = entryLogOffset(entries, index);
        const size = entrySize(entries, index);
        const queueOffset = fromQueueOffset + index;
        const at = logOffset - span.base;
        let source = buffer;
        let pos = at;
        let message: StoredMessage | null = null;
        if (at + size > got) {
          // an entry pointing past what the read got: read the record on its own before taking
          // the entry for damaged (a consume-queue file pointing past the log)
          const again = await this.reread(logOffset, size, hints, queueId, queueOffset);
          if (again === null) {
            this.damaged(
              'CorruptIndex',
              'points past the log',
              topic,
              queueId,
              queueOffset,
              logOffset,
            );
            continue;
          }
          ({ buffer: source, message } = again);
          pos = 0;
        }
        if (filter !== null && !filter.matches(source, pos, entryTagHash(entries, index))) continue;
        if (message === null) {
          // Records from the cache of recent writes never left this process since they were
          // encoded and checksummed: their CRC is not computed again. Bytes read from a file are.
          try {
            message = this.decodeAt(
              source,
              pos,
              size,
              logOffset,
              hints,
              queueId,
              queueOffset,
              span.source !== 'memory',
            );
          } catch (error) {
            if (!isDamage(error)) throw error;
            // read once more on its own, from the file: one damaged record (or an entry not
            // pointing at its record) costs that message, not its queue — the read goes on past
            // it, as past an entry a tag filter leaves out
            const again = await this.reread(logOffset, size, hints, queueId, queueOffset);
            if (again === null) {
              this.damaged(error.code, error.message, topic, queueId, queueOffset, logOffset);
              continue;
            }
            message = again.message;
          }
        }
        if (messages.length > 0 && bodyBytes + message.body.length > maxBytes) {
          nextQueueOffset = queueOffset; // read next time
          break outer;
        }
        messages.push(message);
        bodyBytes += message.body.length;
        if (messages.length >= maxMessages) {
          nextQueueOffset = queueOffset + 1;
          break outer;
        }
      }
    }
    return answer('FOUND', nextQueueOffset, messages);
  }

  /**
   * Groups the candidate entries into spans of records fetched together and notes in `needs` the
   * read-ahead blocks they want (with the end of what each must hold).
   */
  private planSpans(
    entries: Buffer,
    candidates: number[],
    needs: Map<number, BlockNeed>,
  ): ReadSpan[] {
    const spans: ReadSpan[] = [];
    const blocks = this.p.blocks;
    // Read ahead when blocks would serve several reads: a read of more than one message whose
    // records lie within less than a block (a read spanning more is one pread already).
    let readAhead = false;
    if (blocks !== null && candidates.length > 1) {
      const last = candidates[candidates.length - 1];
      const readSpan =
        entryLogOffset(entries, last) +
        entrySize(entries, last) -
        entryLogOffset(entries, candidates[0]);
      readAhead = readSpan < this.p.blockBytes;
    }
    let c = 0;
    while (c < candidates.length) {
      const from = c;
      const first = candidates[c];
      const spanLogOffset = entryLogOffset(entries, first);
      let spanEnd = spanLogOffset + entrySize(entries, first);
      const cached = this.p.readCache.find(spanLogOffset, spanEnd - spanLogOffset);
      c++;
      if (cached !== null) {
        const base = spanLogOffset - cached.pos;
        const limit = base + cached.buffer.length;
        while (c < candidates.length) {
          const index = candidates[c];
          const lo = entryLogOffset(entries, index);
          if (lo < base || lo + entrySize(entries, index) > limit) break;
          c++;
        }
        spans.push({ from, to: c, base, buffer: cached.buffer, source: 'memory' });
        continue;
      }
      const block = blocks === null ? null : this.blockAt(spanLogOffset);
      if (
        block !== null &&
        spanEnd <= block.start + this.p.blockBytes * 2 &&
        (blocks!.has(block.start) || readAhead)
      ) {
        const blockEnd = block.start + block.capacity;
        if (spanEnd > blockEnd) {
          // A record across two blocks: both are read (the next one is wanted next anyway).
          const next = this.blockAt(blockEnd);
          if (next !== null && next.start === blockEnd && spanEnd <= blockEnd + next.capacity) {
            needBlock(needs, block.start, block.capacity, blockEnd);
            needBlock(needs, next.start, next.capacity, spanEnd);
            spans.push({
              from,
              to: c,
              base: spanLogOffset,
              buffer: EMPTY,
              source: 'straddle',
              blockStart: block.start,
              nextStart: next.start,
              needEnd: spanEnd,
            });
            continue;
          }
        } else {
          while (c < candidates.length) {
            const index = candidates[c];
            const lo = entryLogOffset(entries, index);
            const end = lo + entrySize(entries, index);
            if (lo < spanEnd || end > blockEnd) break;
            spanEnd = end;
            c++;
          }
          needBlock(needs, block.start, block.capacity, spanEnd);
          spans.push({
            from,
            to: c,
            base: block.start,
            buffer: EMPTY,
            source: 'block',
            blockStart: block.start,
            nextStart: -1,
            needEnd: spanEnd,
          });
          continue;
        }
      }
      const segmentEnd = this.p.log.segmentEnd(spanLogOffset) ?? Number.MAX_SAFE_INTEGER;
      while (c < candidates.length) {
        const index = candidates[c];
        const lo = entryLogOffset(entries, index);
        const size = entrySize(entries, index);
        // Records of other queues in between are read along: one larger pread beats many.
        if (lo < spanEnd || lo - spanEnd > MAX_COALESCED_GAP_BYTES) break;
        if (lo + size > segmentEnd || lo + size - spanLogOffset > MAX_COALESCED_READ_BYTES) break;
        spanEnd = lo + size;
        c++;
      }
      spans.push({
        from,
        to: c,
        base: spanLogOffset,
        buffer: Buffer.allocUnsafe(spanEnd - spanLogOffset),
        source: 'read',
      });
    }
    return spans;
  }

  /**
   * Fetches every span at once (preads, and blocks through the read-ahead cache); resolves to the
   * bytes each span got (fewer than its buffer: missing) and the last block a span used.
   */
  private async fetchSpans(
    spans: ReadSpan[],
    needs: Map<number, BlockNeed>,
    logMin: number,
    readableEnd: number,
  ): Promise<{ reads: number[]; lastBlock: LogBlock | null; lastNeedEnd: number }> {
    const blocks = this.p.blocks;
    const [reads, blockList] = await Promise.all([
      Promise.all(
        spans.map((span) =>
          span.source !== 'read' || span.base < logMin
            ? Promise.resolve(span.source === 'memory' ? span.buffer.length : 0)
            : this.p.log.read(span.buffer, 0, span.buffer.length, span.base),
        ),
      ),
      Promise.all(
        [...needs].map(([start, need]) =>
          blocks!.ensure(start, need.capacity, need.needEnd, readableEnd),
        ),
      ),
    ]);
    const loaded = new Map<number, LogBlock>();
    for (const block of blockList) loaded.set(block.start, block);
    let lastBlock: LogBlock | null = null;
    let lastNeedEnd = 0;
    for (let s = 0; s < spans.length; s++) {
      const span = spans[s];
      if (span.source === 'block') {
        const block = loaded.get(span.blockStart!)!;
        span.buffer = block.buf;
        reads[s] = block.length >= span.needEnd! - block.start ? block.buf.length : 0;
        lastBlock = block;
        lastNeedEnd = span.needEnd!;
      } else if (span.source === 'straddle') {
        const block = loaded.get(span.blockStart!)!;
        const next = loaded.get(span.nextStart!)!;
        const size = span.needEnd! - span.base;
        span.buffer = Buffer.allocUnsafe(size);
        if (block.length === block.capacity && next.length >= span.needEnd! - next.start) {
          const head = block.start + block.length - span.base;
          block.buf.copy(span.buffer, 0, span.base - block.start, block.length);
          next.buf.copy(span.buffer, head, 0, size - head);
          reads[s] = size;
        } else {
          reads[s] = 0;
        }
        lastBlock = next;
        lastNeedEnd = span.needEnd!;
      }
    }
    return { reads, lastBlock, lastNeedEnd };
  }

  /**
   * The reader will want what follows: fetches the blocks holding the next stretch of log as long
   * as this read's (at least a block), while this one is served.
   */
  private readAheadAfter(
    lastBlock: LogBlock,
    lastNeedEnd: number,
    firstLogOffset: number,
    readableEnd: number,
  ): void {
    const blocks = this.p.blocks;
    const window = Math.max(lastNeedEnd - firstLogOffset, this.p.blockBytes);
    const aheadEnd = Math.min(lastNeedEnd + window, readableEnd);
    let start = lastBlock.start + lastBlock.capacity;
    for (let n = 0; n < MAX_PREFETCH_BLOCKS && start < aheadEnd; n++) {
      const next = this.blockAt(start);
      if (next === null || next.start !== start) break;
      blocks!.prefetch(next.start, next.capacity, readableEnd);
      start += next.capacity;
    }
  }

  /** The read-ahead block holding `logOffset`: aligned in its segment, never crossing it (a
   *  segment ends where the next starts: segments written with another segmentBytes differ). */
  private blockAt(logOffset: number): { start: number; capacity: number } | null {
    const segmentStart = this.p.log.segmentStart(logOffset);
    if (segmentStart < 0) return null;
    const segmentEnd = this.p.log.segmentEnd(logOffset) ?? segmentStart + this.p.segmentBytes;
    const blockBytes = this.p.blockBytes;
    const start = segmentStart + Math.floor((logOffset - segmentStart) / blockBytes) * blockBytes;
    return { start, capacity: Math.min(blockBytes, segmentEnd - start) };
  }

  private decodeAt(
    buffer: Buffer,
    at: number,
    size: number,
    logOffset: number,
    hints: DecodeHints,
    queueId: number,
    queueOffset: number,
    verifyCrc: boolean,
  ): StoredMessage {
    const topic = hints.topic;
    const check = checkFrame(buffer, at, at + size, logOffset, verifyCrc);
    if (check.status !== 'ok' || check.kind !== 'message' || check.length !== size) {
      const positionWrong =
        buffer.length >= at + FRAME_HEADER_BYTES && frameLogOffset(buffer, at) !== logOffset;
      throw positionWrong
        ? new WharfError(
            'CorruptIndex',
            `consume queue ${topic}/${queueId} entry ${queueOffset} points at no record`,
            {
              details: { logOffset, queueOffset },
            },
          )
        : new WharfError('CorruptRecord', `record at logOffset ${logOffset} failed its check`, {
            details: {
              logOffset,
              reason: check.status === 'corrupt' ? check.reason : check.status,
            },
          });
    }
    const message = decodeCheckedMessage(buffer, at, size, logOffset, hints);
    if (
      message === null ||
      message.queueId !== queueId ||
      message.queueOffset !== queueOffset ||
      message.topic !== topic
    ) {
      throw new WharfError(
        'CorruptIndex',
        `consume queue ${topic}/${queueId} entry ${queueOffset} does not match its record`,
        {
          details: { logOffset, queueOffset },
        },
      );
    }
    return message;
  }

  async queueEntries(
    topic: string,
    queueId: number,
    fromQueueOffset: number,
    count: number,
  ): Promise<QueueEntriesResult> {
    const queue = this.p.queues.get(topic, queueId);
    const maxQueueOffset = queue?.maxQueueOffset ?? 0;
    let start = Math.max(fromQueueOffset, queue?.minQueueOffset ?? 0);
    const n = Math.min(Math.max(0, Math.floor(count)), maxQueueOffset - start);
    if (queue === undefined || n <= 0) {
      start = Math.min(start, maxQueueOffset);
      return { entries: [], startQueueOffset: start, nextQueueOffset: start, maxQueueOffset };
    }
    const raw = await queue.readEntries(start, n, false);
    const logMin = this.p.log.minLogOffset;
    const entries: QueueEntryRef[] = [];
    for (let i = 0; i < n; i++) {
      const logOffset = entryLogOffset(raw, i);
      if (logOffset < logMin) continue; // retention deleted its record
      entries.push({
        queueOffset: start + i,
        logOffset,
        storeTimestampMs: entryStoreTimestampMs(raw, i),
        size: entrySize(raw, i),
      });
    }
    return { entries, startQueueOffset: start, nextQueueOffset: start + n, maxQueueOffset };
  }

  /**
   * readMessage for many positions at once, answers in their order. Sorted by position, each run
   * of records close together is one pread into one shared buffer (a record longer than the guess
   * is read again on its own), instead of a pread and a 4 KiB buffer per record.
   */
  async readMessages(logOffsets: readonly number[]): Promise<(StoredMessage | null)[]> {
    const found = new Array<StoredMessage | null>(logOffsets.length).fill(null);
    const readableEnd = this.p.dispatcher.dispatchedLogOffset;
    const wanted: number[] = [];
    for (let i = 0; i < logOffsets.length; i++) {
      const logOffset = logOffsets[i];
      if (!Number.isInteger(logOffset) || logOffset < this.p.log.minLogOffset) continue;
      if (logOffset + MESSAGE_HEADER_BYTES > readableEnd) continue;
      const head = this.p.readCache.find(logOffset, MESSAGE_HEADER_BYTES);
      const whole =
        head === null ? null : this.p.readCache.find(logOffset, frameLength(head.buffer, head.pos));
      if (whole !== null) found[i] = this.decodeRecordAt(whole.buffer, whole.pos, logOffset);
      else wanted.push(i);
    }
    wanted.sort((a, b) => logOffsets[a] - logOffsets[b]);
    // plan the runs first, so that one buffer holds them all
    const runs: { from: number; to: number; start: number; end: number; at: number }[] = [];
    let total = 0;
    for (let s = 0; s < wanted.length;) {
      const start = logOffsets[wanted[s]];
      const limit = this.p.log.segmentEnd(start) ?? Number.MAX_SAFE_INTEGER;
      let end = Math.min(start + RECORD_GUESS_BYTES, limit);
      let e = s + 1;
      while (e < wanted.length) {
        const next = logOffsets[wanted[e]];
        const nextEnd = Math.min(next + RECORD_GUESS_BYTES, limit);
        if (next - end > MAX_BATCH_GAP_BYTES || next >= limit) break;
        if (nextEnd - start > MAX_COALESCED_READ_BYTES) break;
        end = Math.max(end, nextEnd);
        e++;
      }
      runs.push({ from: s, to: e, start, end, at: total });
      total += end - start;
      s = e;
    }
    const slab = Buffer.allocUnsafe(total);
    await Promise.all(
      runs.map(async (run) => {
        const n = await this.p.log.read(slab, run.at, run.end - run.start, run.start);
        const buffer = slab.subarray(run.at, run.at + n);
        for (let w = run.from; w < run.to; w++) {
          const i = wanted[w];
          const logOffset = logOffsets[i];
          const at = logOffset - run.start;
          if (at + MESSAGE_HEADER_BYTES > n || at + frameLength(buffer, at) > n) {
            found[i] = await this.readMessage(logOffset); // longer than the guess
            continue;
          }
          found[i] = this.decodeRecordAt(buffer, at, logOffset);
        }
      }),
    );
    return found;
  }

  /** The message whose record starts at `logOffset`; null for any position that is not a live
   *  message start (so ids can map to positions by arithmetic). */
  async readMessage(logOffset: number): Promise<StoredMessage | null> {
    if (!Number.isInteger(logOffset) || logOffset < this.p.log.minLogOffset) return null;
    if (logOffset + MESSAGE_HEADER_BYTES > this.p.dispatcher.dispatchedLogOffset) return null;
    let buffer: Buffer;
    let at: number;
    const head = this.p.readCache.find(logOffset, MESSAGE_HEADER_BYTES);
    const size = head === null ? 0 : frameLength(head.buffer, head.pos);
    const whole = head === null ? null : this.p.readCache.find(logOffset, size);
    if (whole !== null) {
      buffer = whole.buffer;
      at = whole.pos;
    } else {
      buffer = Buffer.allocUnsafe(4096);
      let n = await this.p.log.read(buffer, 0, buffer.length, logOffset);
      if (n < MESSAGE_HEADER_BYTES) return null;
      const length = frameLength(buffer, 0);
      if (length > n && length <= this.p.maxRecordBytes) {
        buffer = Buffer.allocUnsafe(length);
        n = await this.p.log.read(buffer, 0, length, logOffset);
      }
      at = 0;
      buffer = buffer.subarray(0, n);
    }
    return this.decodeRecordAt(buffer, at, logOffset);
  }

  /** The message record at `at` of `buffer` (which ends where the bytes read end), checked. */
  private decodeRecordAt(buffer: Buffer, at: number, logOffset: number): StoredMessage | null {
    if (frameLogOffset(buffer, at) !== logOffset) return null;
    const check = checkFrame(buffer, at, buffer.length, logOffset);
    if (check.status === 'corrupt' && check.reason === 'CRC mismatch') {
      throw new WharfError('CorruptRecord', `record at logOffset ${logOffset} failed its CRC`, {
        details: { logOffset },
      });
    }
    if (check.status !== 'ok' || check.kind !== 'message') return null;
    const message = decodeCheckedMessage(buffer, at, check.length, logOffset);
    if (message === null || this.p.queues.isDeleted(message.topic, logOffset)) return null;
    return message;
  }
}
