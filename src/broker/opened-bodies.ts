// The plaintext of bodies the broker sealed most recently, by log offset, so a receive of a
// message just published (the common case of a consumer that keeps up) skips its AES-GCM open:
// creating a decipher and opening a 1 KiB body cost about a fifth of the HTTP consume path's
// CPU. One ring buffer allocated once holds the plaintexts, each behind a small header, and a
// Map of numbers finds them: no object per entry for the garbage collector to walk (a Map of
// Buffer views cost publishes 15% in GC at 64 MiB). New entries overwrite the oldest; a read
// copies the bytes out, so an answer never sees them overwritten. An entry names its instance:
// forgetting an instance's key empties the cache, so crypto-shredding holds here as in the log.

/** Entry header: logOffset f64, envelope bytes u32, body bytes u32, instance u32, spare u32. */
const HEADER_BYTES = 24;
/** Body bytes of a header that marks the rest of the ring as unused (the next entry wraps). */
const WRAP = 0xffffffff;
/** Larger bodies are not cached: rare, and each would push out many small ones. */
const MAX_CACHED_BODY_BYTES = 64 * 1024;

export class OpenedBodies {
  private readonly ring: Buffer;
  /** logOffset → where its entry starts in the ring. */
  private readonly where = new Map<number, number>();
  private readonly instances = new Map<string, number>();
  /** Where the next entry goes and where the oldest live one starts (ring positions). */
  private head = 0;
  private tail = 0;
  /** Bytes between tail and head. */
  private used = 0;

  constructor(maxBytes: number) {
    this.ring = Buffer.alloc(
      maxBytes <= 0 ? 0 : Math.max(maxBytes & ~7, 2 * MAX_CACHED_BODY_BYTES),
    );
  }

  /** Remembers the plaintext of the envelope just stored at `logOffset`. */
  add(logOffset: number, instance: string, envelopeBytes: number, body: Buffer): void {
    if (this.ring.length === 0 || body.length > MAX_CACHED_BODY_BYTES) return;
    const size = (HEADER_BYTES + body.length + 7) & ~7;
    if (this.head + size > this.ring.length) {
      // the rest of the ring stays unused: a wrap mark (when a header fits), then start over
      this.claim(this.ring.length - this.head);
      if (this.ring.length - this.head >= HEADER_BYTES)
        this.ring.writeUInt32LE(WRAP, this.head + 12);
      this.used += this.ring.length - this.head;
      this.head = 0;
    }
    this.claim(size);
    let id = this.instances.get(instance);
    if (id === undefined) this.instances.set(instance, (id = this.instances.size));
    const at = this.head;
    this.ring.writeDoubleLE(logOffset, at);
    this.ring.writeUInt32LE(envelopeBytes, at + 8);
    this.ring.writeUInt32LE(body.length, at + 12);
    this.ring.writeUInt32LE(id, at + 16);
    body.copy(this.ring, at + HEADER_BYTES);
    this.where.set(logOffset, at);
    this.head += size;
    this.used += size;
  }

  /** A copy of the plaintext stored at `logOffset` under `instance`, when it is still here. */
  get(logOffset: number, instance: string, envelopeBytes: number): Buffer | undefined {
    const at = this.where.get(logOffset);
    if (at === undefined) return undefined;
    const length = this.ring.readUInt32LE(at + 12);
    if (
      this.ring.readDoubleLE(at) !== logOffset ||
      this.ring.readUInt32LE(at + 8) !== envelopeBytes ||
      this.ring.readUInt32LE(at + 16) !== this.instances.get(instance)
    )
      return undefined;
    return Buffer.from(this.ring.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length));
  }

  /** Forgets every plaintext (an instance's key was deleted: rare, so all of them go). */
  forget(): void {
    this.where.clear();
    this.instances.clear();
    this.head = this.tail = this.used = 0;
  }

  /** Whether it keeps anything (a budget of 0 keeps nothing). */
  get keeps(): boolean {
    return this.ring.length > 0;
  }

  get size(): number {
    return this.where.size;
  }

  /** Drops the oldest entries until `bytes` more fit. */
  private claim(bytes: number): void {
    while (this.used > 0 && this.used + bytes > this.ring.length) {
      const rest = this.ring.length - this.tail;
      if (rest < HEADER_BYTES || this.ring.readUInt32LE(this.tail + 12) === WRAP) {
        this.used -= rest;
        this.tail = 0;
        continue;
      }
      const offset = this.ring.readDoubleLE(this.tail);
      if (this.where.get(offset) === this.tail) this.where.delete(offset);
      const size = (HEADER_BYTES + this.ring.readUInt32LE(this.tail + 12) + 7) & ~7;
      this.used -= size;
      this.tail += size;
    }
  }
}
