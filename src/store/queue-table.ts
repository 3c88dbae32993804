// Every consume queue of the store by (topic, queueId), and the topics deleted at a logOffset:
// records of a deleted topic below that logOffset are never dispatched again (so a crash after
// deleteTopic cannot bring its queues back). The deleted-topic list is a JSON snapshot written
// atomically and a log each deletion appends one line to (deleted-topics.ts): a deletion costs a
// small append and its fdatasync, not a rewrite of the whole list, which grows with every
// deleted topic (a MB after a few hundred tenants) until its records leave the log.
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { WharfError } from '../errors.js';
import type { FileCache } from './file-cache.js';
import { ConsumeQueue } from './consume-queue.js';
import { TOPIC_FILE, decodeTopicDir, topicDirName } from './consume-queue-entry.js';
import { decodeLog, decodeSnapshot, encodeDeletion } from './deleted-topics.js';
import { eachLimited, PARALLEL_FILE_TASKS } from './each-limited.js';
import { readFileIfExists, writeFileAtomic } from './file-io.js';
import type { QueuePageCache } from './queue-page-cache.js';

const DELETED_TOPICS_FILE = 'deleted-topics.json';
const DELETIONS_LOG_FILE = 'deleted-topics.log';

export class QueueTable {
  private readonly topics = new Map<string, Map<number, ConsumeQueue>>();
  private deletedAt = new Map<string, number>();
  /** Deletions made (forget) that the log does not hold yet, and the log's line count. */
  private unlogged: [string, number][] = [];
  private logLines = 0;
  /** The log is not to be appended to (missing, cut short, an append failed midway, or holding
   *  a deletion the commit log's recovery took back): the next persist writes the snapshot. */
  private logNeedsRewrite = false;
  /** Queues of deleted topics whose files a deletion that failed (a full disk) left: the next
   *  deletion of the name (the drop, retried) removes them. */
  private readonly unremoved = new Map<string, ConsumeQueue[]>();

  constructor(
    readonly dir: string,
    readonly root: string,
    readonly segmentEntries: number,
    private readonly cache: FileCache,
    readonly pageCache: QueuePageCache,
    /** Lines the deletion log may hold before it is folded into the snapshot. */
    private readonly logLinesPerSnapshot = 4096,
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
    const snapshot = await readFileIfExists(join(this.dir, DELETED_TOPICS_FILE));
    const log = await readFileIfExists(join(this.dir, DELETIONS_LOG_FILE));
    try {
      if (snapshot !== null) decodeSnapshot(snapshot, this.deletedAt);
      if (log !== null) this.logLines = decodeLog(log, this.deletedAt);
    } catch (error) {
      // without the list, deleted topics would come back: the store does not open on a guess
      throw new WharfError('CorruptIndex', `deleted topics of ${this.dir}: ${String(error)}`, {
        cause: error,
      });
    }
    // A log that is missing, or ends in a line a crash cut short (its deletion was never
    // answered), is replaced by the next deletion's snapshot rather than appended to (an append
    // would join the cut line, or land in a file whose directory entry is not durable). Nothing
    // is written here: a store opens on a full or read-only disk.
    const cut = log !== null && log.length > 0 && log[log.length - 1] !== 0x0a;
    if (log === null || cut) this.logNeedsRewrite = true;
  }

  /** After the commit log's recovery: a deletion recorded past the end it recovered to (the
   *  log's tail was lost with the machine, the deletion's line was not) is taken to that end,
   *  where the log goes on. True when one was: the caller writes the snapshot (writeSnapshot),
   *  else the next open would judge a topic created again since by the old offset. */
  clampDeletions(endLogOffset: number): boolean {
    let clamped = false;
    for (const [topic, at] of this.deletedAt) {
      if (at <= endLogOffset) continue;
      this.deletedAt.set(topic, endLogOffset);
      this.logNeedsRewrite = clamped = true;
    }
    return clamped;
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

  /** Forgets the topic's queues (in memory now; persistDeleted records it durably) and answers
   *  them for removal, with those an earlier deletion of the name failed to remove. */
  forget(topic: string, logOffset: number): ConsumeQueue[] {
    const byId = this.topics.get(topic);
    this.topics.delete(topic);
    this.deletedAt.set(topic, logOffset);
    this.unlogged.push([topic, logOffset]);
    const left = this.unremoved.get(topic) ?? [];
    this.unremoved.delete(topic);
    return byId === undefined ? left : [...left, ...byId.values()];
  }

  /** A deletion of `topic` failed before its queues' files were removed: the next removes them. */
  keepForRemoval(topic: string, queues: ConsumeQueue[]): void {
    if (queues.length > 0) this.unremoved.set(topic, queues);
  }

  /** Makes the deletions made so far durable: appended to the log (one fdatasync), and folded
   *  into a new snapshot, without the moot ones, once the log is long. */
  async persistDeleted(minLogOffset: number): Promise<void> {
    if (this.unlogged.length === 0) return;
    const lines = this.unlogged;
    this.unlogged = [];
    try {
      if (this.logNeedsRewrite || this.logLines + lines.length > this.logLinesPerSnapshot) {
        await this.writeSnapshot(minLogOffset);
        return;
      }
      const log = await open(join(this.dir, DELETIONS_LOG_FILE), 'a');
      try {
        await log.writeFile(Buffer.concat(lines.map(([topic, at]) => encodeDeletion(topic, at))));
        await log.datasync();
        this.logLines += lines.length;
      } finally {
        await log.close().catch(() => undefined);
      }
    } catch (error) {
      // the next deletion tries again, with a snapshot: a write that failed midway left part
      // of a line the next append would join
      this.unlogged = lines.concat(this.unlogged);
      this.logNeedsRewrite = true;
      throw error;
    }
  }

  /** The whole list as the snapshot (deletions older than the whole log are moot), then an
   *  empty log: a crash between the two reads the log's lines again, which change nothing. */
  async writeSnapshot(minLogOffset: number): Promise<void> {
    for (const [topic, at] of this.deletedAt) if (at <= minLogOffset) this.deletedAt.delete(topic);
    const json = JSON.stringify(Object.fromEntries(this.deletedAt));
    await writeFileAtomic(join(this.dir, DELETED_TOPICS_FILE), Buffer.from(json, 'utf8'));
    await writeFileAtomic(join(this.dir, DELETIONS_LOG_FILE), Buffer.alloc(0));
    this.logLines = 0;
    this.logNeedsRewrite = false;
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
  const loadTopic = async (topicName: string): Promise<void> => {
    const topicDir = join(root, topicName);
    const named = await readFileIfExists(join(topicDir, TOPIC_FILE));
    const topic =
      named !== null && named.length > 0 ? named.toString('utf8') : decodeTopicDir(topicName);
    if (topic === null) {
      // A hashed directory without its name file is unusable: drop it, recovery rebuilds it.
      await rm(topicDir, { recursive: true, force: true });
      return;
    }
    const loaded = (await readdir(topicDir))
      .filter((queueName) => /^\d+$/.test(queueName))
      .map(
        (queueName) =>
          new ConsumeQueue(topicDir, topic, Number(queueName), segmentEntries, cache, pageCache),
      );
    // one queue after another: topics are loaded PARALLEL_FILE_TASKS at once
    for (const queue of loaded) await queue.load();
    queues.push(...loaded);
  };
  await eachLimited(await readdir(root), PARALLEL_FILE_TASKS, loadTopic);
  return queues;
}
