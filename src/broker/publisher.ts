// Publish: queue choice (round-robin, or a stable hash of the sharding key), idempotence by
// dedupId, one store append per call, ids in request order. A dedupId is indexed as a record key,
// so the store's key index answers "stored within the window?" after any restart; the newest ones
// are also kept in memory, and concurrent publishes of one dedupId wait for the first.
import type { PublishMessage, PublishResult, TopicDescriptor } from '../model/index.js';
import { WharfError } from '../errors.js';
import { MessageFlags, type AppendMessage, type StoredMessage } from '../store/index.js';
import { shardingHash } from '../protocol/index.js';
import type { BrokerCore } from './broker-core.js';
import { bodyMd5 } from './body-md5.js';
import {
  isScheduleTopic,
  scheduleDedupKey,
  ScheduleProperty,
  scheduleTopic,
} from './schedule-records.js';
import type { Scheduler } from './scheduler.js';
import {
  dedupKey,
  halfTopic,
  isSystemName,
  messageScope,
  storeTopic,
  SystemProperty,
} from './names.js';

/** Where half messages are registered once stored (Transactions). */
export interface HalfMessageSink {
  added(
    half: string,
    stored: readonly {
      queueId: number;
      queueOffset: number;
      logOffset: number;
      storeTimestampMs: number;
    }[],
  ): void;
  transactionIds(topic: TopicDescriptor, messageIds: readonly string[]): string[];
}

interface DedupHit {
  messageId: string;
  queueId: number;
  bodyMd5: string;
  storedAtMs: number;
  /** The call that stored the copy (a cluster gateway's request id), when known. */
  requestId?: string;
}

interface PendingRecord {
  index: number;
  record: AppendMessage;
  /** Set when the body is sealed (on the seal thread, beside the cipher: see sealed()). */
  bodyMd5: string;
  /** Set for a delayed message: stored as a schedule record due then. */
  deliverAtMs: number | undefined;
  /** Set for a message with a dedupId: settles the promise later publishes of it wait on. */
  dedupKey?: string;
  resolve?: (hit: DedupHit) => void;
  reject?: (error: unknown) => void;
  /** The promise of `pending` it settles. */
  promise?: Promise<DedupHit>;
}

/** Keys and property names starting with the broker's reserved prefix could forge a dedupId or
 *  an original message id: refused. */
function checkUserNames(message: PublishMessage): void {
  for (const key of message.keys ?? []) {
    if (isSystemName(key))
      throw new WharfError('InvalidArgument', 'a key may not start with \\u0001');
  }
  for (const name of Object.keys(message.properties ?? {})) {
    if (isSystemName(name))
      throw new WharfError('InvalidArgument', 'a property name may not start with \\u0001');
  }
}

const ok = Promise.resolve();

export class Publisher {
  private readonly roundRobin = new Map<string, number>();
  private readonly pending = new Map<string, Promise<DedupHit>>();
  private readonly recent = new Map<string, DedupHit>();

  constructor(
    private readonly core: BrokerCore,
    private readonly halves?: HalfMessageSink,
    /** Takes delayed messages; null: this broker has no delay wheel and refuses them. */
    private readonly scheduler: Scheduler | null = null,
  ) {}

  /** Refuses a delay this broker or topic cannot take. */
  private requireDelay(topic: TopicDescriptor): Scheduler {
    if (this.scheduler === null)
      throw new WharfError('InvalidArgument', 'delayed delivery is not available on this broker');
    if (topic.messageType === 'FIFO' || topic.messageType === 'TRANSACTION')
      throw new WharfError('InvalidArgument', `a ${topic.messageType} topic takes no delay`);
    return this.scheduler;
  }

  async publish(
    topic: TopicDescriptor,
    messages: readonly PublishMessage[],
  ): Promise<PublishResult[]> {
    // a dropped topic's stale descriptor is refused here, and again in the turn of the append
    // (a drop may land while this call looks up dedupIds or seals): dropped-names.ts
    this.core.dropped.checkTopic(topic);
    const now = Date.now();
    // a delayed message is stored as a schedule record (Scheduler), deduplicated like the rest
    const isDelayed = messages.map((message) => (message.deliverAtMs ?? 0) > now);
    const scheduler = isDelayed.includes(true) ? this.requireDelay(topic) : null;
    // a TRANSACTION topic's messages are stored as half messages, invisible until committed
    const halves = topic.messageType === 'TRANSACTION' ? this.halves : undefined;
    const name = halves === undefined ? storeTopic(topic) : halfTopic(topic);
    // A dedupId another call is storing now: that call is waited for, then this one looks again
    // (its copy may have failed, or been fenced meanwhile: see confirmed).
    const others = this.othersInFlight(name, messages);
    if (others.length > 0) {
      await Promise.allSettled(others);
      return this.publish(topic, messages);
    }
    const results: (PublishResult | undefined)[] = new Array<PublishResult | undefined>(
      messages.length,
    );
    const waits: Promise<void>[] = [];
    const toAppend: PendingRecord[] = [];

    for (const message of messages) checkUserNames(message);
    for (const [index, message] of messages.entries()) {
      const queueId = this.chooseQueue(topic, name, message);
      const bodyMd5 = ''; // sealed() sets it
      const deliverAtMs = isDelayed[index] ? message.deliverAtMs : undefined;
      const scheduledFor = deliverAtMs === undefined ? undefined : topic.topic;
      const record = this.toRecord(name, queueId, message, now, scheduledFor);
      if (message.dedupId === undefined) {
        toAppend.push({ index, record, bodyMd5, deliverAtMs });
        continue;
      }
      const key = `${name}\u0000${message.dedupId}`;
      // the same dedupId earlier in this batch, or in a publish still being stored
      const inFlight = this.pending.get(key);
      if (inFlight !== undefined) {
        waits.push(
          inFlight.then((hit) => void (results[index] = { ...this.answer(hit), duplicate: true })),
        );
        continue;
      }
      let resolve!: (hit: DedupHit) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<DedupHit>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => undefined);
      this.pending.set(key, promise);
      toAppend.push({
        index,
        record,
        bodyMd5,
        deliverAtMs,
        resolve,
        reject,
        promise,
        dedupKey: key,
      });
    }

    const waited = Promise.all(waits);
    waited.catch(() => undefined); // awaited below; this only keeps an early throw from leaving it unhandled
    try {
      // earlier copies within the window: memory first, then the store's key index
      const fresh: PendingRecord[] = [];
      // the fences waiting in Redis, applied once for the whole call (see confirmed)
      let fencesSettled: Promise<void> | undefined;
      const settleFences = (): Promise<void> =>
        (fencesSettled ??= this.core.fencedCalls?.settle() ?? ok);
      await Promise.all(
        toAppend.map(async (item) => {
          if (item.dedupKey === undefined) return fresh.push(item);
          const hit = await this.findStored(topic, name, item.dedupKey, now);
          if (hit === null || !(await this.confirmed(topic, hit, settleFences)))
            return fresh.push(item);
          results[item.index] = { ...this.answer(hit), duplicate: true };
          this.resolvePending(item, hit);
          return undefined;
        }),
      );
      fresh.sort((a, b) => a.index - b.index);
      if (fresh.length > 0) {
        // One append for the whole batch, delayed messages as schedule records beside the
        // others: the store refuses all of it or none (an over-long tag, a full disk), and a
        // round that fails fails all of it — a refused publish stored nothing, so its retry
        // stores each message once.
        const sealedRecords = await this.sealed(topic, fresh);
        const records =
          scheduler === null
            ? sealedRecords
            : sealedRecords.map((record, i) => {
                const deliverAtMs = fresh[i].deliverAtMs;
                return deliverAtMs === undefined
                  ? record
                  : scheduler.scheduleRecord(topic, record, deliverAtMs);
              });
        this.core.dropped.checkTopic(topic); // in the turn of the append's placing
        const appended = await this.core.store.append(records);
        const immediate: number[] = [];
        const delayed: number[] = [];
        fresh.forEach((item, i) => (item.deliverAtMs === undefined ? immediate : delayed).push(i));
        if (this.core.bodyKeys.caching && immediate.length > 0)
          this.core.bodyKeys.stored(
            topic.tenantId,
            topic.instanceId,
            immediate.map((i) => appended[i].logOffset),
            immediate.map((i) => records[i].body),
            immediate.map((i) => fresh[i].record.body),
          );
        if (scheduler !== null && delayed.length > 0)
          scheduler.scheduled(
            topic,
            delayed.map((i) => ({
              ...appended[i],
              queueId: fresh[i].record.queueId,
              deliverAtMs: fresh[i].deliverAtMs ?? now,
            })),
          );
        const ids = this.core.ids.encode(
          messageScope(topic),
          appended.map((result) => ({ brokerId: this.core.brokerId, logOffset: result.logOffset })),
        );
        halves?.added(
          name,
          appended.map((result, i) => ({ ...result, queueId: fresh[i].record.queueId })),
        );
        const counters = this.core.counters.topic(name);
        counters.publish.add(fresh.length);
        for (const [i, item] of fresh.entries()) {
          counters.bytesIn += appended[i].size;
          this.stored(item, ids[i], appended[i].storeTimestampMs, results);
        }
      }
      await waited;
    } catch (error) {
      for (const item of toAppend) item.reject?.(error);
      throw error;
    } finally {
      for (const item of toAppend) this.release(item);
    }
    if (halves !== undefined) {
      const done = results as PublishResult[];
      const ids = halves.transactionIds(
        topic,
        done.map((result) => result.messageId),
      );
      done.forEach((result, i) => (result.transactionId = ids[i]));
    }
    return results as PublishResult[];
  }

  /** The records of `items`, bodies sealed with their instance's key (when it has one). */
  private async sealed(
    topic: TopicDescriptor,
    items: readonly PendingRecord[],
  ): Promise<AppendMessage[]> {
    const records = items.map((item) => item.record);
    const sealed = await this.core.bodyKeys.seal(
      topic.tenantId,
      topic.instanceId,
      records.map((record) => record.body),
    );
    // the answer's bodyMd5: computed where the body was sealed, else here
    items.forEach((item, i) => (item.bodyMd5 = sealed?.md5s[i] ?? bodyMd5(item.record.body)));
    return sealed === null
      ? records
      : records.map((record, i) =>
          appendRecord(record, sealed.envelopes[i], (record.flags ?? 0) | MessageFlags.SEALED),
        );
  }

  /** The pending stores of other calls for this call's dedupIds. */
  private othersInFlight(name: string, messages: readonly PublishMessage[]): Promise<DedupHit>[] {
    if (this.pending.size === 0) return [];
    const found: Promise<DedupHit>[] = [];
    for (const message of messages) {
      if (message.dedupId === undefined) continue;
      const inFlight = this.pending.get(`${name}\u0000${message.dedupId}`);
      if (inFlight !== undefined) found.push(inFlight);
    }
    return found;
  }

  /**
   * Whether a stored copy may answer this publish as its duplicate. On a cluster broker, not the
   * copy of a call a gateway failed over (a fence, maybe in Redis still: `settleFences` applies those
   * waiting): the client repeating the call after its 503 holds no other copy, and the fence
   * withdraws that one. A copy answered so is vouched for: a fence of its call arriving later
   * leaves it (delivered twice at worst, beside its failed-over copy; never lost).
   */
  private async confirmed(
    topic: TopicDescriptor,
    hit: DedupHit,
    settleFences: () => Promise<void>,
  ): Promise<boolean> {
    const fences = this.core.fencedCalls;
    if (fences === null || hit.requestId === undefined) return true;
    await settleFences();
    if (fences.fenced(hit.requestId)) return false;
    // a drop meanwhile: no vouch record is made again under a dropped name (dropped-names.ts)
    this.core.dropped.checkTopic(topic);
    await fences.vouch(topic, hit.requestId);
    return true;
  }

  /** Answers a record just stored, and later publishes of its dedupId. */
  private stored(
    item: PendingRecord,
    messageId: string,
    storedAtMs: number,
    results: (PublishResult | undefined)[],
  ): void {
    const answer = { messageId, queueId: item.record.queueId, bodyMd5: item.bodyMd5 };
    results[item.index] = answer;
    if (item.dedupKey === undefined) return;
    const requestId = item.record.properties?.[SystemProperty.requestId];
    const hit = { ...answer, storedAtMs, ...(requestId === undefined ? {} : { requestId }) };
    this.remember(item.dedupKey, hit);
    this.resolvePending(item, hit);
  }

  /** Settles the dedupId's promise with its answer, and stops offering it to later publishes:
   *  one that waited for it would find it settled at once and look again — in a loop, without
   *  a turn of the event loop, while this call still runs (othersInFlight). */
  private resolvePending(item: PendingRecord, hit: DedupHit): void {
    item.resolve?.(hit);
    this.release(item);
  }

  /** Takes the item's promise out of `pending`, if it is still there (not another call's). */
  private release(item: PendingRecord): void {
    if (item.dedupKey !== undefined && this.pending.get(item.dedupKey) === item.promise)
      this.pending.delete(item.dedupKey);
  }

  /** Drops a deleted topic's round-robin position and remembered dedupIds. */
  forgetTopic(name: string): void {
    this.roundRobin.delete(name);
    for (const key of [...this.recent.keys()])
      if (key.startsWith(`${name}\u0000`)) this.recent.delete(key);
  }

  private answer(hit: DedupHit): PublishResult {
    return { messageId: hit.messageId, queueId: hit.queueId, bodyMd5: hit.bodyMd5 };
  }

  private chooseQueue(topic: TopicDescriptor, name: string, message: PublishMessage): number {
    // a cluster gateway chose the queue (it decides the broker): keep its choice
    if (message.queueId !== undefined) {
      if (!Number.isInteger(message.queueId) || message.queueId >= topic.queueCount)
        throw new WharfError(
          'InvalidArgument',
          `queueId ${message.queueId} is not a queue of the topic`,
        );
      return message.queueId;
    }
    if (message.shardingKey !== undefined)
      return shardingHash(message.shardingKey) % topic.queueCount;
    if (topic.messageType === 'FIFO') return 0;
    const next = (this.roundRobin.get(name) ?? 0) + 1;
    this.roundRobin.set(name, next);
    return next % topic.queueCount;
  }

  private toRecord(
    name: string,
    queueId: number,
    message: PublishMessage,
    now: number,
    /** Set for a delayed message: its dedupId is indexed in the schedule topic, per topic. */
    scheduledFor?: string,
  ): AppendMessage {
    const properties: Record<string, string> = { ...message.properties };
    if (message.bodyEncoding === 'base64') properties[SystemProperty.bodyEncoding] = 'b';
    if (message.shardingKey !== undefined)
      properties[SystemProperty.shardingKey] = message.shardingKey;
    if (message.requestId !== undefined) properties[SystemProperty.requestId] = message.requestId;
    const keys = message.keys === undefined ? [] : [...message.keys];
    if (message.dedupId !== undefined)
      keys.push(
        scheduledFor === undefined
          ? dedupKey(message.dedupId)
          : scheduleDedupKey(scheduledFor, message.dedupId),
      );
    // every field, in appendRecord's order: one shape for the store (see appendRecord)
    return {
      topic: name,
      queueId,
      tag: message.tag,
      keys,
      properties,
      body: message.body,
      bornTimestampMs: now,
      flags: 0,
      attempt: undefined,
    };
  }

  private async findStored(
    topic: TopicDescriptor,
    name: string,
    key: string,
    now: number,
  ): Promise<DedupHit | null> {
    const since = now - topic.dedupWindowMs;
    const cached = this.recent.get(key);
    if (cached !== undefined && cached.storedAtMs >= since) return cached;
    const dedupId = key.slice(name.length + 1);
    // published at once (its record in the topic) or delayed (its schedule record)
    const lookups: Promise<StoredMessage[]>[] = [
      this.core.store.queryByKey(name, dedupKey(dedupId), 1),
    ];
    if (this.scheduler !== null && topic.messageType !== 'TRANSACTION') {
      const schedules = scheduleTopic(topic.tenantId, topic.instanceId);
      if (this.core.store.queueIds(schedules).length > 0)
        lookups.push(
          this.core.store.queryByKey(schedules, scheduleDedupKey(topic.topic, dedupId), 1),
        );
    }
    // a copy a publish fence withdrew (or cancelled, when delayed) is not stored any more: the
    // publish that follows stores the message again (its first answer never reached the client)
    const message = (await Promise.all(lookups)).flat().find(
      (stored) =>
        stored.storeTimestampMs >= since &&
        !this.fenced(stored) &&
        // a topic deleted and created again under its name does not see the old one's
        // dedupIds (by the log position of the deletion, not by clocks: createdAt is a
        // gateway's); a schedule record is the topic's too
        !this.core.store.deletedAfter(name, stored.logOffset),
    );
    if (message === undefined) return null;
    await this.core.bodyKeys.ready(topic.tenantId, topic.instanceId);
    const body = this.core.bodyKeys.open(message);
    if (body === null) return null; // its instance's key is gone: nothing of it exists any more
    const hit: DedupHit = {
      messageId: this.core.ids.encodeOne(messageScope(topic), {
        brokerId: this.core.brokerId,
        logOffset: message.logOffset,
      }),
      queueId: isScheduleTopic(message.topic)
        ? Number(message.properties[ScheduleProperty.targetQueueId])
        : message.queueId,
      bodyMd5: bodyMd5(body),
      storedAtMs: message.storeTimestampMs,
    };
    const requestId = message.properties[SystemProperty.requestId];
    if (requestId !== undefined) hit.requestId = requestId;
    this.remember(key, hit);
    return hit;
  }

  /** Whether a publish fence took the stored copy back (its record, or its schedule record,
   *  marked withdrawn: see publish-fences.ts). */
  private fenced(stored: StoredMessage): boolean {
    return this.core.journal.withdrawals.has(stored.topic, stored.queueId, stored.queueOffset);
  }

  /** Forgets every remembered dedupId (a fence withdrew copies: they are looked up again). */
  forgetDedupHits(): void {
    this.recent.clear();
  }

  private remember(key: string, hit: DedupHit): void {
    this.recent.delete(key);
    this.recent.set(key, hit);
    if (this.recent.size > this.core.limits.dedupCacheEntries) {
      const oldest = this.recent.keys().next().value as string;
      this.recent.delete(oldest);
    }
  }
}

/** A record of one shape whatever fields the message has (every field present, in one order):
 *  the store measures and encodes every record it appends, and records built by spreading
 *  objects of varying fields made those property loads miss their inline caches (about 30% of
 *  the record encoding in a micro-benchmark). */
function appendRecord(record: AppendMessage, body: Buffer, flags: number): AppendMessage {
  return {
    topic: record.topic,
    queueId: record.queueId,
    tag: record.tag,
    keys: record.keys,
    properties: record.properties,
    body,
    bornTimestampMs: record.bornTimestampMs,
    flags,
    attempt: record.attempt,
  };
}
