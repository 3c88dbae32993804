// Every consume queue of the store by (topic, queueId), and the topics deleted at a logOffset:
// records of a deleted topic below that logOffset are never dispatched again (so a crash after
// deleteTopic cannot bring its queues back). The deleted-topic list is a small JSON file written
// atomically.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileCache } from './file-cache.js';
import { ConsumeQueue } from './consume-queue.js';
import { TOPIC_FILE, decodeTopicDir, topicDirName } from './consume-queue-entry.js';
import { readFileIfExists, writeFileAtomic } from './file-io.js';
import type { QueuePageCache } from './queue-page-cache.js';

const DELETED_TOPICS_FILE = 'deleted-topics.json';

export class QueueTable {
  private readonly topics = new Map<string, Map<number, ConsumeQueue>>();
  private deletedAt = new Map<string, number>();

  constructor(
    readonly dir: string,
    readonly root: string,
    readonly segmentEntries: number,
    private readonly cache: FileCache,
    readonly pageCache: QueuePageCache,
  ) {}

  async load(): Promise<void> {
    const queues = await loadConsumeQueues(
      this.root,
      this.segmentEntries,
      this.cache,
      this.pageCache,
    );
    for (const queue of queues) {
      this.add(queue);
    }
    const raw = await readFileIfExists(join(this.dir, DELETED_TOPICS_FILE));
    if (raw !== null) {
      const parsed = JSON.parse(raw.toString('utf8')) as unknown;
      if (parsed !== null && typeof parsed === 'object') {
        for (const [topic, logOffset] of Object.entries(parsed as Record<string, unknown>)) {
          if (typeof logOffset === 'number') this.deletedAt.set(topic, logOffset);
        }
      }
    }
  }

  private add(queue: ConsumeQueue): void {
    let byId = this.topics.get(queue.topic);
    if (byId === undefined) {
      byId = new Map();
      this.topics.set(queue.topic, byId);
    }
    byId.set(queue.queueId, queue);
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.topics.get(topic)?.get(queueId);
  }

  getOrCreate(topic: string, queueId: number): ConsumeQueue {
    let byId = this.topics.get(topic);
    if (byId === undefined) {
      byId = new Map();
      this.topics.set(topic, byId);
    }
    let queue = byId.get(queueId);
    if (queue === undefined) {
      queue = new ConsumeQueue(
        join(this.root, topicDirName(topic)),
        topic,
        queueId,
        this.segmentEntries,
        this.cache,
        this.pageCache,
      );
      byId.set(queueId, queue);
    }
    return queue;
  }

  queueIds(topic: string): number[] {
    const byId = this.topics.get(topic);
    return byId === undefined ? [] : [...byId.keys()].sort((a, b) => a - b);
  }

  topicNames(): string[] {
    return [...this.topics.keys()];
  }

  all(): ConsumeQueue[] {
    const queues: ConsumeQueue[] = [];
    for (const byId of this.topics.values()) queues.push(...byId.values());
    return queues;
  }

  get queueCount(): number {
    let n = 0;
    for (const byId of this.topics.values()) n += byId.size;
    return n;
  }

  /** Whether a record of `topic` at `logOffset` belongs to a deleted incarnation of the topic. */
  isDeleted(topic: string, logOffset: number): boolean {
    const at = this.deletedAt.get(topic);
    return at !== undefined && logOffset < at;
  }

  /** Forgets the topic's queues (in memory now) and records the deletion durably. */
  forget(topic: string, logOffset: number): ConsumeQueue[] {
    const byId = this.topics.get(topic);
    this.topics.delete(topic);
    this.deletedAt.set(topic, logOffset);
    return byId === undefined ? [] : [...byId.values()];
  }

  async persistDeleted(minLogOffset: number): Promise<void> {
    // Deletions older than the whole log are moot.
    for (const [topic, at] of this.deletedAt) if (at <= minLogOffset) this.deletedAt.delete(topic);
    const json = JSON.stringify(Object.fromEntries(this.deletedAt));
    await writeFileAtomic(join(this.dir, DELETED_TOPICS_FILE), Buffer.from(json, 'utf8'));
  }

  /** At open, after recoverTail: removes the files of queues that belong to a deleted incarnation
   *  of their topic (a crash after the deletion was recorded, before its files were removed):
   *  their entries all point below the deletion. A re-created topic's queues point above it. */
  async dropStaleQueues(): Promise<void> {
    for (const [topic, at] of this.deletedAt) {
      const byId = this.topics.get(topic);
      if (byId === undefined) continue;
      const stale: ConsumeQueue[] = [];
      for (const queue of byId.values()) {
        const last = queue.maxQueueOffset;
        if (last === 0 || (await queue.entryAt(last - 1)).logOffset < at) stale.push(queue);
      }
      if (stale.length === 0) continue;
      for (const queue of stale) {
        await queue.deleteFiles();
        await rm(queue.dir, { recursive: true, force: true });
        byId.delete(queue.queueId);
      }
      if (byId.size === 0) {
        this.topics.delete(topic);
        await rm(join(this.root, topicDirName(topic)), { recursive: true, force: true });
      }
    }
  }

  async removeFiles(queues: ConsumeQueue[], topic: string): Promise<void> {
    for (const queue of queues) await queue.deleteFiles();
    await rm(join(this.root, topicDirName(topic)), { recursive: true, force: true });
  }
}

/** Loads every consume queue under `root` (consumequeue/<topicDir>/<queueId>/<files>). */
async function loadConsumeQueues(
  root: string,
  segmentEntries: number,
  cache: FileCache,
  pageCache: QueuePageCache,
): Promise<ConsumeQueue[]> {
  await mkdir(root, { recursive: true });
  const queues: ConsumeQueue[] = [];
  for (const topicName of await readdir(root)) {
    const topicDir = join(root, topicName);
    const named = await readFileIfExists(join(topicDir, TOPIC_FILE));
    const topic =
      named !== null && named.length > 0 ? named.toString('utf8') : decodeTopicDir(topicName);
    if (topic === null) {
      // A hashed directory without its name file is unusable: drop it, recovery rebuilds it.
      await rm(topicDir, { recursive: true, force: true });
      continue;
    }
    for (const queueName of await readdir(topicDir)) {
      if (!/^\d+$/.test(queueName)) continue;
      const queue = new ConsumeQueue(
        topicDir,
        topic,
        Number(queueName),
        segmentEntries,
        cache,
        pageCache,
      );
      await queue.load();
      queues.push(queue);
    }
  }
  return queues;
}
