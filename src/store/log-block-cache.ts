// A byte-bounded LRU of commit-log blocks read ahead for queue readers: a consumer draining a
// backlog reads the log in blocks (one pread each, shared by every queue whose records sit in
// them) instead of one pread per receive, and the next block is fetched while the current one is
// served. Invariants: a block holds a prefix (`length` bytes from its start) of log bytes below
// the dispatched end when they were read, which never change while the store runs (recovery
// truncates before anyone reads; retention only deletes whole segments, whose blocks are
// dropped); one load at a time per block; bytes cached stay within the limit plus one block.

export interface LogBlock {
  /** logOffset of the block's first byte. */
  readonly start: number;
  /** Bytes to the block's end (a block never crosses a segment). */
  readonly capacity: number;
  readonly buf: Buffer;
  /** Valid bytes from `start`. */
  length: number;
  /** The load in flight, if any. */
  loading: Promise<void> | null;
}

/** Reads `length` bytes at `logOffset` into buf[bufOffset]; returns the count read. */
export type LogReader = (
  buf: Buffer,
  bufOffset: number,
  length: number,
  logOffset: number,
) => Promise<number>;

export class LogBlockCache {
  /** Map order is recency order: the first block is the least recently used. */
  private readonly blocks = new Map<number, LogBlock>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  prefetches = 0;

  constructor(
    readonly limitBytes: number,
    private readonly read: LogReader,
  ) {}

  get cachedBytes(): number {
    return this.bytes;
  }

  /** The cached block starting at `start`, marked as just used; undefined if none. */
  get(start: number): LogBlock | undefined {
    const block = this.blocks.get(start);
    if (block !== undefined) {
      this.blocks.delete(start);
      this.blocks.set(start, block);
    }
    return block;
  }

  /** Whether a block starts at `start` (cached or loading), without touching it. */
  has(start: number): boolean {
    return this.blocks.has(start);
  }

  /**
   * The block at `start` holding at least `needEnd - start` bytes (when the log has them),
   * loading what it lacks up to `readTo` (its end, or the readable end of the log).
   */
  async ensure(start: number, capacity: number, needEnd: number, readTo: number) {
    let block = this.get(start);
    if (block === undefined) {
      block = this.create(start, capacity);
      this.misses++;
    } else if (block.length >= needEnd - start) {
      this.hits++;
      return block;
    } else {
      this.misses++;
    }
    while (block.length < needEnd - start) {
      if (block.loading !== null) {
        await block.loading;
        continue;
      }
      const from = block.length;
      const want = Math.min(readTo, start + capacity) - start - from;
      if (want <= 0) break;
      const b = block;
      const loading = this.read(b.buf, from, want, start + from).then(
        (n) => {
          if (from + n > b.length) b.length = from + n;
          b.loading = null;
          return n;
        },
        (err: unknown) => {
          b.loading = null;
          throw err;
        },
      );
      // Waiters on this load retry on their own when it failed (and see that error themselves).
      b.loading = loading.then(
        () => undefined,
        () => undefined,
      );
      // A short read (past the end of a segment file) ends the loop: the caller sees the length.
      if ((await loading) < want) break;
    }
    return block;
  }

  /** Starts loading the block at `start` unless it is cached or loading (errors ignored). */
  prefetch(start: number, capacity: number, readTo: number): void {
    if (this.blocks.has(start) || readTo <= start) return;
    this.prefetches++;
    void this.ensure(start, capacity, Math.min(readTo, start + capacity), readTo).catch(
      () => undefined,
    );
  }

  private create(start: number, capacity: number): LogBlock {
    const block: LogBlock = {
      start,
      capacity,
      buf: Buffer.allocUnsafeSlow(capacity),
      length: 0,
      loading: null,
    };
    this.blocks.set(start, block);
    this.bytes += capacity;
    for (const [key, victim] of this.blocks) {
      if (this.bytes <= this.limitBytes || victim === block) break;
      this.remove(key, victim);
    }
    return block;
  }

  private remove(key: number, block: LogBlock): void {
    this.blocks.delete(key);
    this.bytes -= block.capacity;
  }

  /** Drops the blocks that start below `logOffset` (segments deleted by retention). */
  dropBelow(logOffset: number): void {
    for (const [key, block] of this.blocks) if (key < logOffset) this.remove(key, block);
  }

  clear(): void {
    for (const [key, block] of this.blocks) this.remove(key, block);
  }
}
