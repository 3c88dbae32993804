// Per-instance data keys for sealed bodies, cached: a key is loaded (or created, on a publish)
// once from its source — Redis, where it is kept encrypted under WHARF_MASTER_KEY — and dropped
// with its instance. A key that is gone (instance or tenant deleted) is never recreated by a read,
// so every stored envelope of the instance stays unreadable, across restarts too.
import type { StoredMessage } from '../store/index.js';
import { MessageFlags } from '../store/index.js';
import { WharfError } from '../errors.js';
import { openBody, sealAad } from './body-seal.js';
import { OpenedBodies } from './opened-bodies.js';
import {
  openInline,
  sealInline,
  type BodyOpener,
  type BodySealer,
  type SealedBodies,
} from './seal-workers.js';

/** Where data keys live (implemented by the meta room's DataKeyRepository). */
export interface DataKeySource {
  /** The instance's 32-byte key; with `create`, made (once, race-free) when there is none. Null:
   *  none exists (deleted, or never made). */
  load(tenantId: string, instanceId: string, create: boolean): Promise<Buffer | null>;
}

interface CachedKey {
  key: Buffer;
  aad: Buffer;
}

export class BodyKeys {
  private readonly keys = new Map<string, CachedKey>();
  private readonly loading = new Map<string, Promise<CachedKey | null>>();
  /** Bumped by forget(): a load that started before is not cached (it may predate the delete). */
  private generation = 0;

  /** Plaintexts of what this broker sealed last: a receive of them opens nothing. */
  private readonly opened: OpenedBodies;

  /** `openedCacheBytes`: the budget of that cache (0: none); `cipher`: where batches are sealed
   *  and opened (SealWorkers' threads, or inline). */
  constructor(
    private readonly source: DataKeySource | null,
    openedCacheBytes = 0,
    private readonly cipher: { seal: BodySealer; open: BodyOpener } = {
      seal: sealInline,
      open: openInline,
    },
  ) {
    this.opened = new OpenedBodies(openedCacheBytes);
  }

  /** Whether bodies are sealed at all (off when the broker runs without a key source). */
  get enabled(): boolean {
    return this.source !== null;
  }

  /** Whether stored() keeps anything: bodies are sealed and the cache has a budget. */
  get caching(): boolean {
    return this.source !== null && this.opened.keeps;
  }

  /** Seals each body for the instance (creating its key on first use), with each body's MD5;
   *  null when disabled. A source that has no key for it (the instance is gone) fails the
   *  publish: never stored plain. */
  async seal(
    tenantId: string,
    instanceId: string,
    bodies: readonly Buffer[],
  ): Promise<SealedBodies | null> {
    if (this.source === null) return null;
    const cached = await this.get(tenantId, instanceId, true);
    if (cached === null)
      throw new WharfError('InstanceNotFound', `instance ${instanceId} has no data key`);
    return this.cipher.seal(cached.key, cached.aad, bodies);
  }

  /** Remembers the plaintexts of envelopes just stored at `logOffsets` (after the append: an
   *  offset names a record only once it is in the log). */
  stored(
    tenantId: string,
    instanceId: string,
    logOffsets: readonly number[],
    envelopes: readonly Buffer[],
    bodies: readonly Buffer[],
  ): void {
    const instance = `${tenantId}/${instanceId}`;
    for (let i = 0; i < logOffsets.length; i++)
      this.opened.add(logOffsets[i], instance, envelopes[i].length, bodies[i]);
  }

  /** Plaintexts the cache holds. */
  get cachedBodies(): number {
    return this.opened.size;
  }

  /** Loads the instance's key so open() can use it; call before reading the instance's records. */
  async ready(tenantId: string, instanceId: string): Promise<void> {
    await this.get(tenantId, instanceId, false);
  }

  /**
   * The plaintext body of a stored record, or null when it is sealed and its key is gone (or was
   * not loaded with ready()) or the envelope does not open: fail closed, as "no such message".
   */
  open(message: StoredMessage): Buffer | null {
    const found = this.lookup(message);
    return found.key === undefined
      ? found.body
      : openBody(found.key.key, message.body, found.key.aad);
  }

  /** What open() needs of a record: its plaintext when plain or cached, null when its key is
   *  not here, else the key to open it with. */
  private lookup(
    message: StoredMessage,
    memo?: TopicMemo,
  ):
    | { body: Buffer | null; key?: undefined }
    | { body?: undefined; key: CachedKey; instance: string } {
    if ((message.flags & MessageFlags.SEALED) === 0) return { body: message.body };
    let instance: string;
    let key: CachedKey | undefined;
    if (memo !== undefined && memo.topic === message.topic) {
      ({ instance, key } = memo);
    } else {
      instance = instanceOf(message.topic);
      key = this.keys.get(instance);
      if (memo !== undefined) {
        memo.topic = message.topic;
        memo.instance = instance;
        memo.key = key;
      }
    }
    if (key === undefined) return { body: null };
    const hit = this.opened.get(message.logOffset, instance, message.body.length);
    return hit === undefined ? { key, instance } : { body: hit };
  }

  /**
   * open() for a batch of records (a receive's): the ones neither plain nor in the opened-body
   * cache are opened together by the cipher (the seal threads), one batch per instance. Null
   * where open() would answer null. Loads the key of an instance whose sealed records the batch
   * holds if it is not here yet (no ready() needed first: a receive that reads nothing, or
   * nothing sealed, asks the key source nothing).
   */
  async openAll(messages: readonly StoredMessage[]): Promise<(Buffer | null)[]> {
    await this.loadKeysOf(messages);
    const out: (Buffer | null)[] = new Array<Buffer | null>(messages.length).fill(null);
    const sealed = new Map<string, { key: CachedKey; at: number[] }>();
    // a receive's records mostly share one topic: its instance and key are looked up once (the
    // loop does not await, so no key comes or goes meanwhile)
    const memo: TopicMemo = { topic: null, instance: '', key: undefined };
    for (const [i, message] of messages.entries()) {
      const found = this.lookup(message, memo);
      if (found.key === undefined) {
        out[i] = found.body; // plain, cached, or null: key gone (or not loaded), fails closed
        continue;
      }
      let batch = sealed.get(found.instance);
      if (batch === undefined) sealed.set(found.instance, (batch = { key: found.key, at: [] }));
      batch.at.push(i);
    }
    await Promise.all(
      [...sealed.values()].map(async ({ key, at }) => {
        const bodies = await this.cipher.open(
          key.key,
          key.aad,
          at.map((i) => messages[i].body),
        );
        at.forEach((i, k) => (out[i] = bodies[k]));
      }),
    );
    return out;
  }

  /** Forgets the instance's key (it was deleted at its source): its envelopes no longer open. */
  forget(tenantId: string, instanceId: string): void {
    this.generation++;
    this.keys.delete(`${tenantId}/${instanceId}`);
    this.opened.forget();
    this.loading.delete(`${tenantId}/${instanceId}`);
  }

  /** Loads the keys of the instances of `messages`' sealed records that are not here yet. */
  private async loadKeysOf(messages: readonly StoredMessage[]): Promise<void> {
    if (this.source === null) return;
    let missing: Set<string> | undefined;
    let topic: string | null = null;
    for (const message of messages) {
      if ((message.flags & MessageFlags.SEALED) === 0 || message.topic === topic) continue;
      topic = message.topic;
      const instance = instanceOf(topic);
      if (!this.keys.has(instance)) (missing ??= new Set()).add(instance);
    }
    if (missing === undefined) return;
    await Promise.all(
      [...missing].map((instance) => {
        const slash = instance.indexOf('/');
        return this.get(instance.slice(0, slash), instance.slice(slash + 1), false);
      }),
    );
  }

  private async get(
    tenantId: string,
    instanceId: string,
    create: boolean,
  ): Promise<CachedKey | null> {
    if (this.source === null) return null;
    const id = `${tenantId}/${instanceId}`;
    const hit = this.keys.get(id);
    if (hit !== undefined) return hit;
    if (!create) {
      const pending = this.loading.get(id);
      if (pending !== undefined) return pending;
    }
    const generation = this.generation;
    const source = this.source;
    const load = (async () => {
      const key = await source.load(tenantId, instanceId, create);
      if (key === null) return null;
      const cached = { key, aad: sealAad(tenantId, instanceId) };
      if (generation === this.generation) this.keys.set(id, cached);
      return cached;
    })();
    if (!create) this.loading.set(id, load);
    try {
      return await load;
    } finally {
      if (this.loading.get(id) === load) this.loading.delete(id);
    }
  }
}

/** The last store topic lookup() resolved within one batch, with its instance and key. */
interface TopicMemo {
  topic: string | null;
  instance: string;
  key: CachedKey | undefined;
}

/** `<tenant>/<instance>` of a store topic name (`<tenant>/<instance>/<topic…>`). */
function instanceOf(topic: string): string {
  const slash = topic.indexOf('/');
  return topic.slice(0, topic.indexOf('/', slash + 1));
}
