// A small read-through cache with a time limit per entry, single-flight loads and invalidation
// by key prefix. Invariant: a load that started before an invalidation never fills the cache
// (an epoch counter tells), so a change seen by `invalidate` is never undone by a slow read.
// Keys end with `|` so that a prefix naming one resource matches only that resource.

interface Entry {
  value: unknown;
  expiresAt: number;
}

export interface TtlCacheOptions {
  /** How long a found value is served without asking Redis again. */
  ttlMs: number;
  /** How long an absent value (null) is remembered; shorter, so creation shows fast. */
  negativeTtlMs: number;
  maxEntries: number;
}

export class TtlCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<unknown>>();
  private epoch = 0;

  constructor(private readonly options: TtlCacheOptions) {}

  async get<T>(key: string, load: () => Promise<T>, now = Date.now()): Promise<T> {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.expiresAt > now) return entry.value as T;
    const pending = this.loading.get(key);
    if (pending !== undefined) return pending as Promise<T>;
    const epoch = this.epoch;
    const promise = load().then(
      (value) => {
        this.loading.delete(key);
        if (epoch === this.epoch && this.options.ttlMs > 0) this.set(key, value);
        return value;
      },
      (err: unknown) => {
        this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, promise);
    return promise;
  }

  /** The value cached for `key` while fresh, else undefined (nothing is loaded). */
  peek(key: string, now = Date.now()): unknown {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.expiresAt > now ? entry.value : undefined;
  }

  private set(key: string, value: unknown): void {
    if (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.delete(key);
    const ttl = value === null ? this.options.negativeTtlMs : this.options.ttlMs;
    this.entries.set(key, { value, expiresAt: Date.now() + ttl });
  }

  invalidate(prefixes: readonly string[]): void {
    this.epoch++;
    this.loading.clear();
    if (prefixes.length === 0) return;
    for (const key of this.entries.keys()) {
      if (prefixes.some((p) => key.startsWith(p))) this.entries.delete(key);
    }
  }

  clear(): void {
    this.epoch++;
    this.loading.clear();
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
