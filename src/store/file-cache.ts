// A bounded LRU of open file descriptors shared by segments, consume queues and key indexes, so
// that open handles never grow with the backlog. A descriptor in use (acquired, not yet released)
// is never closed under its user: eviction skips it, and forgetting it (file about to be deleted)
// defers the close to its last release. The bound is exceeded only while every cached descriptor
// is in use.
import { closeFile, openFile } from './file-io.js';

interface Entry {
  fd: number;
  users: number;
  doomed: boolean;
}

export class FileCache {
  private readonly entries = new Map<string, Entry>();
  private readonly opening = new Map<string, Promise<Entry>>();
  private closing = new Set<Promise<void>>();

  constructor(private readonly maxOpenFiles: number) {}

  get openCount(): number {
    return this.entries.size;
  }

  /** Runs `fn` with the descriptor of `path`, opened (created when `create`) or reused. */
  async with<T>(path: string, fn: (fd: number) => Promise<T>, create = true): Promise<T> {
    const entry = await this.acquire(path, create);
    try {
      return await fn(entry.fd);
    } finally {
      this.release(entry);
    }
  }

  private async acquire(path: string, create: boolean): Promise<Entry> {
    let entry = this.entries.get(path);
    if (entry === undefined) {
      let pending = this.opening.get(path);
      if (pending === undefined) {
        const opened = this.open(path, create, () => this.opening.get(path) === opened);
        pending = opened;
        this.opening.set(path, opened);
        const done = (): void => {
          if (this.opening.get(path) === opened) this.opening.delete(path);
        };
        opened.then(done, done);
      }
      entry = await pending;
    } else {
      // Map order is the LRU order: move to the most recent end.
      this.entries.delete(path);
      this.entries.set(path, entry);
    }
    entry.users++;
    this.evict();
    return entry;
  }

  private release(entry: Entry): void {
    entry.users--;
    if (entry.doomed && entry.users === 0) void this.close(entry);
    else this.evict();
  }

  /** Drops the descriptor of a file about to be deleted or renamed (closed once unused) — one
   *  being opened too: it is not cached, and the file's next user opens it again (a file created
   *  again under the path is not written through the old one's descriptor). */
  forget(path: string): Promise<void> {
    this.opening.delete(path);
    const entry = this.entries.get(path);
    if (entry === undefined) return Promise.resolve();
    this.entries.delete(path);
    entry.doomed = true;
    if (entry.users === 0) return this.close(entry);
    return Promise.resolve();
  }

  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) void this.close(entry);
    await Promise.allSettled([...this.closing]);
  }

  /** Opens `path`; cached unless forgotten while it opened (`current` false): then it is closed
   *  once its waiting users are done with it. */
  private async open(path: string, create: boolean, current: () => boolean): Promise<Entry> {
    const fd = await openFile(path, create);
    const entry: Entry = { fd, users: 0, doomed: !current() };
    if (!entry.doomed) this.entries.set(path, entry);
    return entry;
  }

  private close(entry: Entry): Promise<void> {
    const closing = closeFile(entry.fd).catch(() => undefined);
    this.closing.add(closing);
    void closing.then(() => this.closing.delete(closing));
    return closing;
  }

  private evict(): void {
    if (this.entries.size <= this.maxOpenFiles) return;
    for (const [path, entry] of this.entries) {
      if (this.entries.size <= this.maxOpenFiles) break;
      if (entry.users > 0) continue;
      this.entries.delete(path);
      void this.close(entry);
    }
  }
}
