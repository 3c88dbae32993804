// A byte-bounded LRU of consume-queue pages shared by every queue of the store, so that a reader
// of queue Q at queueOffset o, who will very likely read o + 32 next, pays one pread per page
// (PAGE_ENTRIES entries) instead of one per read. Invariants: a page holds a prefix of its
// entries (`count` from its start), and only entries already written to the queue's file, which
// never change afterwards while the store runs (recovery truncates before anyone reads; deleting
// a topic or expiring files drops their pages); evicted and dropped pages are never re-inserted.

/** Entries per page (24 KiB). Pages never cross a consume-queue file. */
export const PAGE_ENTRIES = 1024;

export interface QueuePage {
  /** First queueOffset of the page. */
  readonly start: number;
  /** Entries the page can hold (fewer than PAGE_ENTRIES at a file's end). */
  readonly capacity: number;
  readonly buf: Buffer;
  /** Entries valid from `start`. */
  count: number;
  /** Evicted or invalidated: no longer in the cache, never updated again. */
  dropped: boolean;
  /** The read in flight into this page (resolves to the entries then valid), if any. */
  loading: Promise<number> | null;
  /** The owning queue's pages by start (the cache removes evicted pages from it). */
  readonly owner: Map<number, QueuePage>;
}

export class QueuePageCache {
  /** Insertion order is recency order: the first page is the least recently used. */
  private readonly lru = new Set<QueuePage>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  prefetches = 0;

  constructor(readonly limitBytes: number) {}

  get enabled(): boolean {
    return this.limitBytes > 0;
  }

  get cachedBytes(): number {
    return this.bytes;
  }

  get pageCount(): number {
    return this.lru.size;
  }

  /** Marks a page as just used. */
  touch(page: QueuePage): void {
    this.lru.delete(page);
    this.lru.add(page);
  }

  /** A new empty page in `owner` at `start`, evicting the least recently used ones past the
   *  byte limit. */
  create(owner: Map<number, QueuePage>, start: number, capacity: number, entryBytes: number) {
    const old = owner.get(start);
    if (old !== undefined) this.drop(old);
    const page: QueuePage = {
      start,
      capacity,
      buf: Buffer.allocUnsafe(capacity * entryBytes),
      count: 0,
      dropped: false,
      loading: null,
      owner,
    };
    owner.set(start, page);
    this.lru.add(page);
    this.bytes += page.buf.length;
    for (const victim of this.lru) {
      if (this.bytes <= this.limitBytes || victim === page) break;
      this.drop(victim);
    }
    return page;
  }

  drop(page: QueuePage): void {
    if (page.dropped) return;
    page.dropped = true;
    this.lru.delete(page);
    this.bytes -= page.buf.length;
    if (page.owner.get(page.start) === page) page.owner.delete(page.start);
  }

  /** Drops every page of `owner` that `which` selects (all by default). */
  dropAll(owner: Map<number, QueuePage>, which: (page: QueuePage) => boolean = () => true): void {
    for (const page of [...owner.values()]) if (which(page)) this.drop(page);
  }

  clear(): void {
    for (const page of [...this.lru]) this.drop(page);
  }
}
