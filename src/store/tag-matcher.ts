// The tag filter of a queue read: a consume-queue entry's tag hash is checked first (no record
// read for a miss), then the record's tag bytes, since different tags can share a hash. Built once
// per read from the filter's tags.
import { hashBytes, recordTagEquals } from './record.js';

export class TagMatcher {
  /** Tag hashes of the wanted tags (0 for the empty tag: a message without one). */
  readonly hashes = new Set<number>();
  private readonly byHash = new Map<number, Buffer[]>();

  constructor(tags: ReadonlySet<string>) {
    for (const tag of tags) {
      const bytes = Buffer.from(tag, 'utf8');
      const hash = bytes.length === 0 ? 0 : hashBytes(bytes, 0, bytes.length);
      this.hashes.add(hash);
      const list = this.byHash.get(hash) ?? [];
      list.push(bytes);
      this.byHash.set(hash, list);
    }
  }

  /** Whether an entry's tag hash may match (the record's tag is checked by `matches`). */
  mayMatch(hash: number): boolean {
    return this.hashes.has(hash);
  }

  /** Whether the message record at buffer[at] (checked, with tag hash `hash`) has a wanted tag. */
  matches(buffer: Buffer, at: number, hash: number): boolean {
    const list = this.byHash.get(hash);
    if (list === undefined) return false;
    for (const tag of list) if (recordTagEquals(buffer, at, tag)) return true;
    return false;
  }
}
