// A byte-bounded cache of the most recently written commit-log chunks, so that consumers reading
// the tail (the common case) are served without a pread. Chunks are kept in logOffset order and
// evicted oldest first; a record is served only when one chunk holds it whole.
interface CachedChunk {
  logOffset: number;
  buffer: Buffer;
}

export class ReadCache {
  private chunks: CachedChunk[] = [];
  private head = 0;
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly limitBytes: number) {}

  get cachedBytes(): number {
    return this.bytes;
  }

  /** Adds a chunk just written; chunks arrive in ascending logOffset order. */
  add(logOffset: number, buffer: Buffer): void {
    if (buffer.length > this.limitBytes) return;
    this.chunks.push({ logOffset, buffer });
    this.bytes += buffer.length;
    while (this.bytes > this.limitBytes) {
      this.bytes -= this.chunks[this.head].buffer.length;
      this.chunks[this.head] = undefined as unknown as CachedChunk;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** The chunk and position holding [logOffset, logOffset + size), or null. */
  find(logOffset: number, size: number): { buffer: Buffer; pos: number } | null {
    const chunks = this.chunks;
    let lo = this.head;
    let hi = chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid];
      if (logOffset < c.logOffset) hi = mid - 1;
      else if (logOffset >= c.logOffset + c.buffer.length) lo = mid + 1;
      else {
        const pos = logOffset - c.logOffset;
        if (pos + size > c.buffer.length) break;
        this.hits++;
        return { buffer: c.buffer, pos };
      }
    }
    this.misses++;
    return null;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.bytes = 0;
  }
}
