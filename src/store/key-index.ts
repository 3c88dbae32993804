// The key index (RocketMQ's IndexFile): an on-disk hash index from hash(topic, key) to chains of
// logOffsets, in files rolled by entry count. The active file's slot table lives in memory and is
// written (CRC'd) at each checkpoint and when the file is sealed, after the entries it points at
// (the newest of which wait in memory, 64 KiB at most, and are read there); sealed files are read
// with pread. Entries are hints: a lookup verifies each candidate by reading its record. Invariant: the
// header's endLogOffset says every keyed record below it is indexed; recovery re-dispatches from
// there, and a damaged file is dropped and rebuilt from the log.
//
// File layout (big-endian): header 64 bytes | slots slotCount × u32 | entries entryCapacity × 16
//   header:  magic u32 'WKIX' | version u8 | sealed u8 | u16 0 | slotCount u32 | entryCapacity u32
//            | entryCount u32 | slotsCrc u32 | beginLogOffset u64 | endLogOffset u64 | 20 × u8 0
//            | headerCrc u32 (CRC32C of bytes 0..60)
//   slot:    1 + index of the newest entry with this slot, 0 = none
//   entry:   keyHash u32 | logOffset u64 | prevEntry u32 (1 + index of the older entry, 0 = none)
// Key hash: FNV-1a 32-bit over the UTF-16 code units (low byte, high byte) of topic, U+0000, key.
import { crc32c } from '@node-rs/crc32';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileCache } from './file-cache.js';
import {
  fdatasync,
  fsyncDir,
  ftruncate,
  isNotFound,
  offsetFileName,
  parseOffsetFileName,
  pread,
  pwrite,
} from './file-io.js';
import type { DispatchRecord } from './record.js';
import { readUInt64, writeUInt64 } from './record.js';
import type { StoreLogger } from './types.js';

const MAGIC = 0x574b4958;
const VERSION = 1;
export const INDEX_HEADER_BYTES = 64;
export const INDEX_ENTRY_BYTES = 16;
/** Longest chain walked in one file by a lookup (bounds the cost of a hot hash slot). */
const MAX_CHAIN_STEPS = 100_000;
/** Entries the active file keeps in memory before writing them (64 KiB). */
const PENDING_ENTRIES = 4096;

function mixString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193);
    h = Math.imul(h ^ (c >>> 8), 0x01000193);
  }
  return h;
}

export function keyHash(topic: string, key: string): number {
  let h = mixString(0x811c9dc5, topic);
  h = Math.imul(h, 0x01000193);
  h = Math.imul(h, 0x01000193);
  return mixString(h, key) >>> 0;
}

interface IndexFile {
  seq: number;
  path: string;
  slotCount: number;
  entryCapacity: number;
  entryCount: number;
  beginLogOffset: number;
  endLogOffset: number;
  sealed: boolean;
  /** The slot table, in memory for the active file only. */
  slots: Buffer | null;
  /** CRC of the slot table as last written, and the entry count it covered. */
  slotsCrc?: number;
  tableEntryCount?: number;
  /** Entries in the file: the first `writtenCount`; the rest (to entryCount) wait in `pending`
   *  (PENDING_ENTRIES entries, the active file's only). */
  writtenCount: number;
  pending: Buffer | null;
}

function encodeHeader(file: IndexFile, slotsCrc: number): Buffer {
  const h = Buffer.alloc(INDEX_HEADER_BYTES);
  h.writeUInt32BE(MAGIC, 0);
  h[4] = VERSION;
  h[5] = file.sealed ? 1 : 0;
  h.writeUInt32BE(file.slotCount, 8);
  h.writeUInt32BE(file.entryCapacity, 12);
  h.writeUInt32BE(file.entryCount, 16);
  h.writeUInt32BE(slotsCrc, 20);
  writeUInt64(h, file.beginLogOffset, 24);
  writeUInt64(h, file.endLogOffset, 32);
  h.writeUInt32BE(crc32c(h.subarray(0, 60)), 60);
  return h;
}

function decodeHeader(
  h: Buffer,
  seq: number,
  path: string,
): { file: IndexFile; slotsCrc: number } | string {
  if (h.length < INDEX_HEADER_BYTES) return 'short header';
  if (h.readUInt32BE(0) !== MAGIC) return 'bad magic';
  if (crc32c(h.subarray(0, 60)) !== h.readUInt32BE(60)) return 'header CRC mismatch';
  if (h[4] !== VERSION) return `unknown version ${h[4]}`;
  return {
    file: {
      seq,
      path,
      sealed: h[5] === 1,
      slotCount: h.readUInt32BE(8),
      entryCapacity: h.readUInt32BE(12),
      entryCount: h.readUInt32BE(16),
      beginLogOffset: readUInt64(h, 24),
      endLogOffset: readUInt64(h, 32),
      slots: null,
      writtenCount: h.readUInt32BE(16),
      pending: null,
    },
    slotsCrc: h.readUInt32BE(20),
  };
}

export interface KeyIndexOpenResult {
  index: KeyIndex;
  /** Every keyed record below this logOffset is indexed; re-dispatch from here. */
  resumeLogOffset: number;
  /** Why the index was dropped and is being rebuilt, if it was. */
  rebuiltReason?: string;
}

export class KeyIndex {
  private files: IndexFile[] = [];
  entriesWritten = 0;

  private constructor(
    readonly dir: string,
    private readonly slotCount: number,
    private readonly entriesPerFile: number,
    private readonly cache: FileCache,
  ) {}

  static async open(
    dir: string,
    slotCount: number,
    entriesPerFile: number,
    cache: FileCache,
    logger?: StoreLogger,
  ): Promise<KeyIndexOpenResult> {
    await mkdir(dir, { recursive: true });
    const index = new KeyIndex(dir, slotCount, entriesPerFile, cache);
    const seqs = (await readdir(dir))
      .map(parseOffsetFileName)
      .filter((n): n is number => n !== null)
      .sort((a, b) => a - b);
    let problem: string | undefined;
    for (const seq of seqs) {
      const path = join(dir, offsetFileName(seq));
      const header = Buffer.alloc(INDEX_HEADER_BYTES);
      const n = await cache.with(path, (fd) => pread(fd, header, 0, INDEX_HEADER_BYTES, 0), false);
      const decoded = decodeHeader(header.subarray(0, n), seq, path);
      if (typeof decoded === 'string') {
        problem = `${offsetFileName(seq)}: ${decoded}`;
        break;
      }
      const { file, slotsCrc } = decoded;
      if (!file.sealed) {
        if (seq !== seqs[seqs.length - 1]) {
          problem = `${offsetFileName(seq)}: unsealed file before the last`;
          break;
        }
        const slots = Buffer.alloc(file.slotCount * 4);
        await cache.with(path, (fd) => pread(fd, slots, 0, slots.length, INDEX_HEADER_BYTES));
        if (crc32c(slots) !== slotsCrc) {
          // A torn slot table (crash while it was written): rebuild this file only.
          await cache.forget(path);
          await rm(path, { force: true });
          break;
        }
        file.slots = slots;
        file.slotsCrc = slotsCrc;
        file.tableEntryCount = file.entryCount;
        const entriesEnd =
          INDEX_HEADER_BYTES + file.slotCount * 4 + file.entryCount * INDEX_ENTRY_BYTES;
        if ((await stat(path)).size > entriesEnd) {
          await cache.with(path, (fd) => ftruncate(fd, entriesEnd));
        }
      }
      index.files.push(file);
    }
    if (problem !== undefined) {
      logger?.warn(
        { code: 'CorruptIndex', dir, problem },
        'key index damaged: dropping it and rebuilding from the commit log',
      );
      await index.dropAll();
      return { index, resumeLogOffset: 0, rebuiltReason: problem };
    }
    const last = index.files[index.files.length - 1];
    return { index, resumeLogOffset: last === undefined ? 0 : last.endLogOffset };
  }

  private async dropAll(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      await this.cache.forget(path);
      await rm(path, { force: true });
    }
    this.files = [];
  }

  get fileCount(): number {
    return this.files.length;
  }

  private get active(): IndexFile | undefined {
    const last = this.files[this.files.length - 1];
    return last !== undefined && !last.sealed ? last : undefined;
  }

  private async createActive(beginLogOffset: number): Promise<IndexFile> {
    const last = this.files[this.files.length - 1];
    const seq = last === undefined ? 0 : last.seq + 1;
    const file: IndexFile = {
      seq,
      path: join(this.dir, offsetFileName(seq)),
      slotCount: this.slotCount,
      entryCapacity: this.entriesPerFile,
      entryCount: 0,
      beginLogOffset,
      endLogOffset: beginLogOffset,
      sealed: false,
      slots: Buffer.alloc(this.slotCount * 4),
      writtenCount: 0,
      pending: null,
    };
    file.slotsCrc = crc32c(file.slots!);
    file.tableEntryCount = 0;
    await this.cache.with(file.path, async (fd) => {
      await pwrite(fd, file.slots!, INDEX_HEADER_BYTES);
      await pwrite(fd, encodeHeader(file, file.slotsCrc!), 0);
    });
    await fsyncDir(this.dir);
    this.files.push(file);
    return file;
  }

  /** Makes sure an active file exists so that the indexed position is recorded. */
  async ensureActive(endLogOffset: number): Promise<void> {
    if (this.active === undefined) await this.createActive(endLogOffset);
  }

  /** Indexes the keys of `records` (in log order); everything below endLogOffset is then done. */
  async add(records: readonly DispatchRecord[], endLogOffset: number): Promise<void> {
    let i = 0;
    let keyIndex = 0;
    while (i < records.length) {
      let file = this.active;
      if (file === undefined || file.entryCount >= file.entryCapacity) {
        if (file !== undefined) await this.seal(file, records[i].logOffset);
        file = await this.createActive(records[i].logOffset);
      }
      // Entries wait in memory (lookups read them there) and go out in batches: a round of
      // keyed records costs no write of its own.
      if (file.entryCount - file.writtenCount >= PENDING_ENTRIES) await this.writePending(file);
      file.pending ??= Buffer.allocUnsafe(PENDING_ENTRIES * INDEX_ENTRY_BYTES);
      const entries = file.pending;
      const first = file.entryCount - file.writtenCount;
      const capacity = Math.min(file.entryCapacity - file.entryCount, PENDING_ENTRIES - first);
      const slotUpdates = new Map<number, number>();
      let n = 0;
      while (i < records.length && n < capacity) {
        const record = records[i];
        const keys = record.keys;
        if (keys === undefined || keyIndex >= keys.length) {
          i++;
          keyIndex = 0;
          continue;
        }
        const hash = keyHash(record.topic, keys[keyIndex]);
        const slot = hash % file.slotCount;
        const prev = slotUpdates.get(slot) ?? file.slots!.readUInt32BE(slot * 4);
        const pos = (first + n) * INDEX_ENTRY_BYTES;
        entries.writeUInt32BE(hash, pos);
        writeUInt64(entries, record.logOffset, pos + 4);
        entries.writeUInt32BE(prev, pos + 12);
        n++;
        slotUpdates.set(slot, file.entryCount + n);
        keyIndex++;
      }
      for (const [slot, value] of slotUpdates) file.slots!.writeUInt32BE(value, slot * 4);
      file.entryCount += n;
      this.entriesWritten += n;
    }
    const active = this.active;
    if (active !== undefined) active.endLogOffset = Math.max(active.endLogOffset, endLogOffset);
    else if (
      this.files.length === 0 ||
      endLogOffset > this.files[this.files.length - 1].endLogOffset
    ) {
      await this.createActive(endLogOffset);
    }
  }

  /** Writes the entries waiting in memory; the table written after it may point at them.
   *  (Runs in the store's serial queue, as add does: nothing is added meanwhile.) */
  private async writePending(file: IndexFile): Promise<void> {
    const count = file.entryCount - file.writtenCount;
    if (count === 0 || file.pending === null) return;
    const at = INDEX_HEADER_BYTES + file.slotCount * 4 + file.writtenCount * INDEX_ENTRY_BYTES;
    const data = file.pending.subarray(0, count * INDEX_ENTRY_BYTES);
    await this.cache.with(file.path, (fd) => pwrite(fd, data, at));
    // Lookups read these from memory until now.
    file.writtenCount += count;
  }

  private async writeTable(file: IndexFile): Promise<void> {
    await this.writePending(file);
    if (file.slotsCrc !== undefined && file.tableEntryCount === file.entryCount && !file.sealed) {
      // Slots unchanged since they were written: only the header moves (endLogOffset).
      const header = encodeHeader(file, file.slotsCrc);
      await this.cache.with(file.path, async (fd) => {
        await pwrite(fd, header, 0);
        await fdatasync(fd);
      });
      return;
    }
    const entryCount = file.entryCount;
    const slots = Buffer.from(file.slots!);
    const slotsCrc = crc32c(slots);
    const header = encodeHeader(file, slotsCrc);
    await this.cache.with(file.path, async (fd) => {
      // Slots (and the entries written before) reach the disk before the header that vouches
      // for them; a crash between leaves a CRC mismatch and the file is rebuilt.
      await pwrite(fd, slots, INDEX_HEADER_BYTES);
      await fdatasync(fd);
      await pwrite(fd, header, 0);
      await fdatasync(fd);
    });
    file.slotsCrc = slotsCrc;
    file.tableEntryCount = entryCount;
  }

  private async seal(file: IndexFile, endLogOffset: number): Promise<void> {
    file.endLogOffset = Math.max(file.endLogOffset, endLogOffset);
    file.sealed = true;
    await this.writeTable(file);
    file.slots = null;
    file.pending = null;
  }

  /** Checkpoint: writes the active file's slot table and header. */
  async flush(): Promise<void> {
    const active = this.active;
    if (active !== undefined) await this.writeTable(active);
  }

  /** Copies entry `index` into `out` when it is still in memory (not yet written). */
  private pendingEntry(file: IndexFile, index: number, out: Buffer): boolean {
    const at = index - file.writtenCount;
    if (at < 0 || file.pending === null) return false;
    file.pending.copy(out, 0, at * INDEX_ENTRY_BYTES, (at + 1) * INDEX_ENTRY_BYTES);
    return true;
  }

  /** Reads `length` bytes of a file at `at` into `buf`; null when retention deleted the file
   *  since the caller listed it (never created again, as opening for write would). */
  private async readOf(
    file: IndexFile,
    buf: Buffer,
    length: number,
    at: number,
  ): Promise<number | null> {
    try {
      return await this.cache.with(file.path, (fd) => pread(fd, buf, 0, length, at), false);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Candidate logOffsets for (topic, key), newest first; callers verify each record. A file
   *  retention deletes meanwhile ends the walk (every older one is gone too). */
  async *candidates(topic: string, key: string, minLogOffset: number): AsyncGenerator<number> {
    const hash = keyHash(topic, key);
    const files = [...this.files];
    const entry = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
    for (let f = files.length - 1; f >= 0; f--) {
      const file = files[f];
      if (file.endLogOffset <= minLogOffset && file.sealed) break;
      const slot = hash % file.slotCount;
      let next: number;
      if (file.slots !== null) {
        next = file.slots.readUInt32BE(slot * 4);
      } else {
        const b = Buffer.allocUnsafe(4);
        if ((await this.readOf(file, b, 4, INDEX_HEADER_BYTES + slot * 4)) === null) return;
        next = b.readUInt32BE(0);
      }
      let steps = 0;
      const entriesAt = INDEX_HEADER_BYTES + file.slotCount * 4;
      while (next > 0 && next <= file.entryCount && steps++ < MAX_CHAIN_STEPS) {
        if (!this.pendingEntry(file, next - 1, entry)) {
          const at = entriesAt + (next - 1) * INDEX_ENTRY_BYTES;
          const n = await this.readOf(file, entry, INDEX_ENTRY_BYTES, at);
          if (n === null) return;
          if (n < INDEX_ENTRY_BYTES) break;
        }
        const logOffset = readUInt64(entry, 4);
        if (logOffset < minLogOffset) break;
        if (entry.readUInt32BE(0) === hash) yield logOffset;
        const prev = entry.readUInt32BE(12);
        if (prev >= next) break;
        next = prev;
      }
    }
  }

  /** Deletes sealed files wholly below the log's first logOffset. */
  async expireBelow(logMinOffset: number): Promise<void> {
    while (
      this.files.length > 1 &&
      this.files[0].sealed &&
      this.files[0].endLogOffset <= logMinOffset
    ) {
      const file = this.files.shift()!;
      await this.cache.forget(file.path);
      await rm(file.path, { force: true });
    }
  }
}
