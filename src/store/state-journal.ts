// The broker's own durable state (consumer offsets, in-flight receipts, acks, schedule and
// transaction markers) as opaque entries in a second frame log under <dir>/journal/: CRC-checked,
// group-committed, torn tail truncated at open, exactly like the commit log. A snapshot makes a
// new base: it is written to a temp file and fsynced, the current `snapshot` is renamed to
// `snapshot.prev`, the new one renamed to `snapshot` (directory fsynced), then journal segments
// wholly before the previous snapshot's position are deleted: a `snapshot` found damaged at open
// (or missing, a crash between the renames) is replaced by the previous one and the entries
// after it, so the broker's state survives one bad snapshot file (the damaged one is moved to
// quarantine/). Invariant: a snapshot's position is a frame boundary, and every entry appended
// before writeSnapshot() was called is durable before the snapshot that reflects it becomes the
// base.
//
// Snapshot file (big-endian): magic u32 'WSNP' | version u8 | 3 × u8 0 | journalLogOffset u64
//   | dataLength u32 | crc32c u32 (of bytes 0..20, then the data) | data
import { crc32c } from '@node-rs/crc32';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { WharfError } from '../errors.js';
import type { FrameWriter } from './commit-log.js';
import { CommitLog } from './commit-log.js';
import type { FileCache } from './file-cache.js';
import { fsyncDir, isNotFound, readFileIfExists, writeFileAtomic } from './file-io.js';
import type { CommitRequest, GroupCommit } from './group-commit.js';
import type { StateJournal, StateJournalRecovery } from './message-store-api.js';
import type { LogRecoveryResult } from './recovery.js';
import {
  FRAME_HEADER_BYTES,
  checkFrame,
  encodeJournalEntry,
  readUInt64,
  writeUInt64,
} from './record.js';
import type { FlushPolicy, StoreLogger } from './types.js';

const SNAPSHOT_MAGIC = 0x57534e50;
const SNAPSHOT_HEADER_BYTES = 24;
const SNAPSHOT_FILE = 'snapshot';
const PREVIOUS_SNAPSHOT_FILE = 'snapshot.prev';

type Snapshot = { journalLogOffset: number; data: Buffer };
type SnapshotFile = { snapshot: Snapshot } | { missing: true } | { damaged: string };

interface UnreadableSnapshot {
  path: string;
  reason: string;
}

/** Moves a damaged snapshot file to quarantine/ (beside the journal's dir), logged. */
async function quarantineSnapshot(
  options: JournalOptions,
  damaged: UnreadableSnapshot,
  message: string,
): Promise<void> {
  const quarantine = join(options.dir, '..', 'quarantine');
  const kept = join(quarantine, `journal-${basename(damaged.path)}-${Date.now()}.damaged`);
  await mkdir(quarantine, { recursive: true });
  await rename(damaged.path, kept);
  await fsyncDir(options.dir);
  options.logger?.error({ code: 'CorruptRecord', reason: damaged.reason, kept }, message);
}

async function readSnapshotFile(path: string): Promise<SnapshotFile> {
  const raw = await readFileIfExists(path);
  if (raw === null) return { missing: true };
  const decoded = decodeSnapshot(raw);
  return typeof decoded === 'string' ? { damaged: decoded } : { snapshot: decoded };
}

export function encodeSnapshot(journalLogOffset: number, data: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(SNAPSHOT_HEADER_BYTES + data.length);
  buf.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  buf.writeUInt32BE(0x01000000, 4);
  writeUInt64(buf, journalLogOffset, 8);
  buf.writeUInt32BE(data.length, 16);
  data.copy(buf, SNAPSHOT_HEADER_BYTES);
  buf.writeUInt32BE(crc32c(data, crc32c(buf.subarray(0, 20))), 20);
  return buf;
}

export function decodeSnapshot(buf: Buffer): { journalLogOffset: number; data: Buffer } | string {
  if (buf.length < SNAPSHOT_HEADER_BYTES || buf.readUInt32BE(0) !== SNAPSHOT_MAGIC) {
    return 'not a journal snapshot';
  }
  if (buf[4] !== 1) return `unknown snapshot version ${buf[4]}`;
  const length = buf.readUInt32BE(16);
  if (buf.length !== SNAPSHOT_HEADER_BYTES + length) return 'snapshot length mismatch';
  const data = buf.subarray(SNAPSHOT_HEADER_BYTES);
  if (crc32c(data, crc32c(buf.subarray(0, 20))) !== buf.readUInt32BE(20)) {
    return 'snapshot CRC mismatch';
  }
  return { journalLogOffset: readUInt64(buf, 8), data };
}

interface JournalRequest extends CommitRequest {
  readonly kind: 'journal';
}

export interface JournalOptions {
  dir: string;
  segmentBytes: number;
  flushPolicy: FlushPolicy;
  asyncFlushIntervalMs: number;
  maxPendingBytes: number;
  maxEntryBytes: number;
  cache: FileCache;
  logger?: StoreLogger;
}

export class FileStateJournal implements StateJournal, FrameWriter {
  /** Frame sizes of the append being placed (reused: appends are synchronous). */
  private readonly sizes: number[] = [];
  /** The entries of the append being placed (set only while it is). */
  private entries: readonly Buffer[] = [];
  private snapshotLogOffset: number;
  private snapshotData: Buffer | null;
  private snapshotChain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: JournalOptions,
    private readonly log: CommitLog<JournalRequest>,
    snapshot: { journalLogOffset: number; data: Buffer } | null,
    readonly recovery: LogRecoveryResult,
  ) {
    this.snapshotLogOffset = snapshot?.journalLogOffset ?? 0;
    this.snapshotData = snapshot?.data ?? null;
  }

  static async open(options: JournalOptions): Promise<FileStateJournal> {
    const { snapshot, unreadable } = await FileStateJournal.loadSnapshot(options);
    const { log, recovery } = await CommitLog.open<JournalRequest>({
      name: 'journal',
      dir: options.dir,
      segmentBytes: options.segmentBytes,
      cache: options.cache,
      flushPolicy: options.flushPolicy,
      asyncFlushIntervalMs: options.asyncFlushIntervalMs,
      maxPendingBytes: options.maxPendingBytes,
      fromLogOffset: snapshot?.journalLogOffset ?? 0,
      exactStart: true,
      onFrame: () => undefined,
      chunkBytes: 1024 * 1024,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    // segments go only once a snapshot covers them: a journal starting past its base (no
    // snapshot: 0; a snapshot.prev left by an earlier version, which deleted segments up to its
    // own snapshot) lost the entries the state needs
    const firstLogOffset = log.list.segments[0]?.startLogOffset ?? 0;
    const base = snapshot?.journalLogOffset ?? 0;
    if (firstLogOffset > base) {
      await log.close();
      throw new WharfError(
        'CorruptRecord',
        unreadable === undefined
          ? `the journal starts at ${firstLogOffset}, past its base at ${base} (${snapshot === null ? 'no snapshot' : 'its snapshot'})`
          : `journal snapshot unreadable (${unreadable.reason}), and the journal starts at ${firstLogOffset}: the state cannot be rebuilt from it`,
        { details: { dir: options.dir, ...(unreadable === undefined ? {} : unreadable) } },
      );
    }
    if (unreadable !== undefined) {
      // the journal still holds every entry from its start: the state is rebuilt from them all
      await quarantineSnapshot(
        options,
        unreadable,
        'journal snapshot damaged and no earlier one: rebuilding the state from the whole journal',
      );
    }
    if (snapshot !== null && snapshot.journalLogOffset > recovery.endLogOffset) {
      // Everything the snapshot covers was durable before it was written; a shorter journal means
      // its tail was lost with the entries the snapshot already reflects: continue after it.
      log.list.endLogOffset = snapshot.journalLogOffset;
      log.groupCommit.resetEnd(snapshot.journalLogOffset);
    }
    return new FileStateJournal(options, log, snapshot, recovery);
  }

  /** The base to recover from: `snapshot`, else the previous one (see the header); with no
   *  readable one, none (the whole journal), naming the damaged file (`unreadable`). */
  private static async loadSnapshot(
    options: JournalOptions,
  ): Promise<{ snapshot: Snapshot | null; unreadable?: UnreadableSnapshot }> {
    const path = join(options.dir, SNAPSHOT_FILE);
    const current = await readSnapshotFile(path);
    if ('snapshot' in current) return { snapshot: current.snapshot };
    const previousPath = join(options.dir, PREVIOUS_SNAPSHOT_FILE);
    const previous = await readSnapshotFile(previousPath);
    if ('damaged' in current) {
      if (!('snapshot' in previous))
        return { snapshot: null, unreadable: { path, reason: current.damaged } };
      await quarantineSnapshot(
        options,
        { path, reason: current.damaged },
        'journal snapshot damaged: recovering from the previous snapshot and the entries after it',
      );
      return { snapshot: previous.snapshot };
    }
    // missing: none written yet, or a crash between the two renames of a snapshot's write
    if ('damaged' in previous)
      return { snapshot: null, unreadable: { path: previousPath, reason: previous.damaged } };
    return { snapshot: 'snapshot' in previous ? previous.snapshot : null };
  }

  recover(): StateJournalRecovery {
    const from = this.snapshotLogOffset;
    const to = this.log.groupCommit.writtenLogOffset;
    return { snapshot: this.snapshotData, entries: this.readEntries(from, to) };
  }

  private async *readEntries(from: number, to: number): AsyncGenerator<Buffer> {
    let logOffset = from;
    let buf = Buffer.allocUnsafe(256 * 1024);
    while (logOffset < to) {
      const want = Math.min(buf.length, to - logOffset);
      const n = await this.log.read(buf, 0, want, logOffset);
      if (n === 0) return;
      let p = 0;
      let jumped = false;
      while (p < n) {
        const at = logOffset + p;
        const check = checkFrame(buf, p, n, at);
        if (check.status === 'incomplete') {
          if (p > 0) break;
          if (n < want || check.needBytes <= buf.length) {
            throw new WharfError('CorruptRecord', `journal frame at ${at} is cut short`);
          }
          buf = Buffer.allocUnsafe(check.needBytes);
          break;
        }
        if (check.status !== 'ok') {
          throw new WharfError('CorruptRecord', `journal frame at ${at} is damaged`);
        }
        if (check.kind === 'blank') {
          logOffset = at + check.length;
          jumped = true;
          break;
        }
        yield Buffer.from(buf.subarray(p + FRAME_HEADER_BYTES, p + check.length));
        p += check.length;
      }
      if (!jumped) logOffset += p;
    }
  }

  append(entries: readonly Buffer[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    let total = 0;
    for (const e of entries) {
      if (e.length + FRAME_HEADER_BYTES > this.options.maxEntryBytes) {
        return Promise.reject(
          new WharfError('RecordTooLarge', `journal entry of ${e.length} bytes over the limit`),
        );
      }
      total += e.length + FRAME_HEADER_BYTES;
    }
    try {
      this.log.groupCommit.checkAccept(total);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const count = entries.length;
    const sizes = this.sizes;
    for (let i = 0; i < count; i++) sizes[i] = entries[i].length + FRAME_HEADER_BYTES;
    return new Promise((resolve, reject) => {
      this.entries = entries;
      try {
        this.log.append(
          {
            kind: 'journal',
            chunks: [],
            bytes: total,
            done: (err) => (err === null ? resolve() : reject(err)),
          },
          sizes,
          count,
          this,
        );
      } finally {
        this.entries = [];
      }
    });
  }

  /** Encodes entry `index` of the append being placed (see CommitLog.append). */
  writeFrame(index: number, buffer: Buffer, pos: number, _size: number, logOffset: number): void {
    encodeJournalEntry(buffer, pos, logOffset, this.entries[index]);
  }

  writeSnapshot(snapshot: Buffer): Promise<void> {
    const journalLogOffset = this.log.list.endLogOffset;
    const run = this.snapshotChain.then(() => this.persistSnapshot(journalLogOffset, snapshot));
    this.snapshotChain = run.catch(() => undefined);
    return run;
  }

  private async persistSnapshot(journalLogOffset: number, data: Buffer): Promise<void> {
    // The entries the snapshot reflects are durable before it replaces them (waiting for this
    // position, not for an idle journal, which a busy broker may never have).
    await this.log.groupCommit.whenAcknowledged(journalLogOffset);
    const path = join(this.options.dir, SNAPSHOT_FILE);
    const previousLogOffset = this.snapshotLogOffset;
    // the current one stays, as the previous, until the next (a fallback for a damaged one)
    await rename(path, join(this.options.dir, PREVIOUS_SNAPSHOT_FILE)).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await writeFileAtomic(path, encodeSnapshot(journalLogOffset, data));
    this.snapshotLogOffset = journalLogOffset;
    this.snapshotData = data;
    const segments = this.log.list.segments;
    let removed = 0;
    // a segment goes once the previous snapshot covers it and no write or sync of it is still to
    // come (with the async policy an acknowledged segment may still wait for its fdatasync)
    const upTo = Math.min(previousLogOffset, this.log.groupCommit.settledLogOffset);
    while (segments.length > 1 && segments[1].startLogOffset <= upTo) {
      const old = segments.shift()!;
      await this.options.cache.forget(old.path);
      await rm(old.path, { force: true });
      removed++;
    }
    if (removed > 0) await fsyncDir(this.options.dir);
  }

  /** After a write refused by a full or read-only disk: cuts back to what was acknowledged and
   *  takes appends again (see CommitLog.resume); false when the failure needs a reopen. */
  resume(): Promise<boolean> {
    return this.log.resume();
  }

  get groupCommit(): GroupCommit<JournalRequest> {
    return this.log.groupCommit;
  }

  get failed(): WharfError | null {
    return this.log.groupCommit.failed;
  }

  bytesSinceSnapshot(): number {
    return Math.max(0, this.log.list.endLogOffset - this.snapshotLogOffset);
  }

  get segmentCount(): number {
    return this.log.list.segments.length;
  }

  async close(): Promise<void> {
    await this.snapshotChain;
    await this.log.close();
  }
}
