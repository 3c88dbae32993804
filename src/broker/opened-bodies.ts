// The plaintext of bodies the broker sealed most recently, by log offset, so a receive of a
// message just published (the common case of a consumer that keeps up) skips its AES-GCM open:
// creating a decipher and opening a 1 KiB body cost about a fifth of the HTTP consume path's
// CPU. Bounded by bytes: plaintexts are copied into 1 MiB slabs of the cache's own (a body
// handed in may be a view into a larger request buffer that must not be kept alive), and the
// oldest entries go first. An entry names its instance, so forgetting an instance's key drops
// its plaintexts too: crypto-shredding holds for the cache as for the log.

const SLAB_BYTES = 1024 * 1024;
/** Larger bodies are not cached: rare, and they would waste the rest of a slab. */
const MAX_CACHED_BODY_BYTES = 64 * 1024;

interface OpenedBody {
  /** `tenantId/instanceId` of the key that sealed it. */
  instance: string;
  /** Length of the envelope stored at the offset: a read whose envelope differs is not this. */
  envelopeBytes: number;
  body: Buffer;
  /** Slab bytes it holds. */
  charge: number;
}

export class OpenedBodies {
  private readonly entries = new Map<number, OpenedBody>();
  private slab: Buffer | null = null;
  private slabUsed = 0;
  /** Bytes of slabs the entries may hold (a slab is freed once its last entry is gone). */
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /** Remembers the plaintext of the envelope just stored at `logOffset`. */
  add(logOffset: number, instance: string, envelopeBytes: number, body: Buffer): void {
    if (this.maxBytes <= 0 || body.length > MAX_CACHED_BODY_BYTES) return;
    if (this.slab === null || this.slabUsed + body.length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const copy = this.slab.subarray(this.slabUsed, this.slabUsed + body.length);
    body.copy(copy);
    // 8-byte steps keep later copies aligned; the charge counts the whole step
    const step = (body.length + 7) & ~7;
    this.slabUsed += step;
    this.drop(logOffset);
    this.entries.set(logOffset, { instance, envelopeBytes, body: copy, charge: step });
    this.held += step;
    // a Map iterates in insertion order: the first entry is the oldest
    for (const offset of this.entries.keys()) {
      if (this.held <= this.maxBytes) break;
      this.drop(offset);
    }
  }

  /** The plaintext stored at `logOffset` under `instance`, when it is still here. */
  get(logOffset: number, instance: string, envelopeBytes: number): Buffer | undefined {
    const hit = this.entries.get(logOffset);
    if (hit === undefined || hit.instance !== instance || hit.envelopeBytes !== envelopeBytes)
      return undefined;
    return hit.body;
  }

  /** Drops every plaintext of `instance` (its key was deleted). */
  forget(instance: string): void {
    for (const [offset, entry] of this.entries) if (entry.instance === instance) this.drop(offset);
  }

  private drop(logOffset: number): void {
    const entry = this.entries.get(logOffset);
    if (entry === undefined) return;
    this.held -= entry.charge;
    this.entries.delete(logOffset);
  }

  get size(): number {
    return this.entries.size;
  }
}
