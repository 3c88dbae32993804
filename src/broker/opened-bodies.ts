// The plaintext of bodies the broker sealed most recently, by log offset, so a receive of a
// message just published (the common case of a consumer that keeps up) skips its AES-GCM open:
// creating a decipher and opening a 1 KiB body cost about a fifth of the HTTP consume path's
// CPU. One ring buffer allocated once holds the plaintexts, each behind a small header, and a
// direct-mapped index of typed arrays finds them: no object per entry for the garbage collector
// to walk (a Map of Buffer views cost publishes 15% in GC at 64 MiB), and no hash table to grow,
// shrink and rehash (a Map of numbers to ring positions was 6–8% of the event loop in a publish
// profile and 2–3% in a drain). New entries overwrite the oldest; a read copies the bytes out, so
// an answer never sees them overwritten. An entry names its instance: forgetting an instance's
// key empties the cache, so crypto-shredding holds here as in the log.
//
// The index has one slot per INDEX_GRAIN bytes of log offset, modulo its size: a record takes
// more than INDEX_GRAIN bytes of log, so two records never share a slot unless they lie more
// than the index's span apart, and then the newer one takes it (the older one is no longer
// found: a miss, never a wrong body). The span is twice the ring, at an eighth of the budget:
// the entries of a full ring of 1 KiB bodies lie within about 1.2 rings of log, while the
// oldest entries of a ring of tiny bodies (a 16-byte body takes 40 bytes here and about 115 of
// log) or of a log mostly of other records are found no more. A slot names the last entry added
// for it and is cleared when that entry is overwritten, so a slot always points at a live
// entry's header, never into another entry's bytes; the header's log offset, envelope size and
// instance are compared all the same.

/** Entry header: logOffset f64, envelope bytes u32, body bytes u32, instance u32, spare u32. */
const HEADER_BYTES = 24;
/** Body bytes of a header that marks the rest of the ring as unused (the next entry wraps). */
const WRAP = 0xffffffff;
/** Larger bodies are not cached: rare, and each would push out many small ones. */
const MAX_CACHED_BODY_BYTES = 64 * 1024;
/** Log bytes a slot of the index covers: below the smallest message record (79 bytes). */
const INDEX_GRAIN = 64;
/** Ring bytes per index slot (4 bytes): the index spans 2 rings of log, an eighth of the ring. */
const RING_BYTES_PER_SLOT = 32;
/** Ring positions are multiples of 8: a slot holds position / 8 + 1 (0: empty). */
const POSITION_UNIT = 8;

/**
 * How a budget of `maxBytes` splits into the ring and the index's slots (4 bytes each): ring +
 * 4 × ring / RING_BYTES_PER_SLOT = maxBytes, the ring a multiple of 8 and at least 128 KiB
 * (room for two of the largest bodies); a budget of 0 or less keeps nothing. Arithmetic, not
 * bitwise: a ring of 2 GiB and more does not fit the 32 bits `&` works in.
 */
export function cacheLayout(maxBytes: number): { ringBytes: number; slots: number } {
  if (maxBytes <= 0) return { ringBytes: 0, slots: 0 };
  const share = Math.floor((maxBytes * RING_BYTES_PER_SLOT) / (RING_BYTES_PER_SLOT + 4));
  const ringBytes = Math.max(share - (share % 8), 2 * MAX_CACHED_BODY_BYTES);
  return { ringBytes, slots: Math.ceil(ringBytes / RING_BYTES_PER_SLOT) };
}

/** The index's slot for a log offset. */
function slotOf(logOffset: number, slots: number): number {
  return Math.floor(logOffset / INDEX_GRAIN) % slots;
}

export class OpenedBodies {
  private readonly ring: Buffer;
  /** slotOf(logOffset) → the ring position of the last entry added for it / 8 + 1 (0: none). */
  private readonly index: Uint32Array;
  /** Slots that name an entry. */
  private entries = 0;
  private readonly instances = new Map<string, number>();
  /** Where the next entry goes and where the oldest live one starts (ring positions). */
  private head = 0;
  private tail = 0;
  /** Bytes between tail and head. */
  private used = 0;

  /** `maxBytes`: ring and index together (see cacheLayout). */
  constructor(maxBytes: number) {
    const { ringBytes, slots } = cacheLayout(maxBytes);
    this.ring = Buffer.alloc(ringBytes);
    this.index = new Uint32Array(slots);
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
    const slot = slotOf(logOffset, this.index.length);
    if (this.index[slot] === 0) this.entries++;
    this.index[slot] = at / POSITION_UNIT + 1;
    this.head += size;
    this.used += size;
  }

  /** A copy of the plaintext stored at `logOffset` under `instance`, when it is still here. */
  get(logOffset: number, instance: string, envelopeBytes: number): Buffer | undefined {
    if (this.index.length === 0) return undefined;
    const named = this.index[slotOf(logOffset, this.index.length)];
    if (named === 0) return undefined;
    const at = (named - 1) * POSITION_UNIT;
    const length = this.ring.readUInt32LE(at + 12);
    if (
      this.ring.readDoubleLE(at) !== logOffset ||
      this.ring.readUInt32LE(at + 8) !== envelopeBytes ||
      this.ring.readUInt32LE(at + 16) !== this.instances.get(instance)
    )
      return undefined;
    const body = Buffer.allocUnsafe(length);
    this.ring.copy(body, 0, at + HEADER_BYTES, at + HEADER_BYTES + length);
    return body;
  }

  /** Forgets every plaintext (an instance's key was deleted: rare, so all of them go). */
  forget(): void {
    this.index.fill(0);
    this.entries = 0;
    this.instances.clear();
    this.head = this.tail = this.used = 0;
  }

  /** Whether it keeps anything (a budget of 0 keeps nothing). */
  get keeps(): boolean {
    return this.ring.length > 0;
  }

  /** Log bytes the index tells apart: entries further apart than this may share a slot. */
  get indexSpan(): number {
    return this.index.length * INDEX_GRAIN;
  }

  /** Entries the index finds. */
  get size(): number {
    return this.entries;
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
      const slot = slotOf(this.ring.readDoubleLE(this.tail), this.index.length);
      if (this.index[slot] === this.tail / POSITION_UNIT + 1) {
        this.index[slot] = 0;
        this.entries--;
      }
      const size = (HEADER_BYTES + this.ring.readUInt32LE(this.tail + 12) + 7) & ~7;
      this.used -= size;
      this.tail += size;
    }
  }
}
