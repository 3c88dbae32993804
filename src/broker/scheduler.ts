// Delayed messages: a publish appends schedule records (schedule-records.ts) and is answered when
// they are durable; a feeder passes (deliverAt, logOffset) to the wheel in Redis off the answer
// path; a ticker claims due entries, holds them in a heap and dispatches each at its ms as a copy
// in its real queue. Invariants: the commit log is the only source of truth (the wheel is rebuilt
// from queue 0 past the checkpoint whenever its mark says it is missing, replaced or behind);
// a record is dispatched at most once (a bitmap of finished records in memory, done marks and the copy's
// scheduleKey in the key index across crashes), a cancel is a durable mark before it answers, and
// a record whose topic was deleted after it was scheduled is finished without a dispatch.
import { randomUUID } from 'node:crypto';
import type { MessageView, TopicDescriptor } from '../model/index.js';
import { WharfError } from '../errors.js';
import {
  MessageFlags,
  type AppendMessage,
  type ReadQueueResult,
  type StoredMessage,
} from '../store/index.js';
import type { BrokerCore } from './broker-core.js';
import { MinHeap } from './min-heap.js';
import { isSystemName, messageScope, storeTopic, SystemProperty } from './names.js';
import { OffsetBitmap } from './offset-bitmap.js';
import {
  decodeScheduleMark,
  encodeScheduleMark,
  isScheduleTopic,
  MARK_QUEUE_ID,
  SCHEDULE_QUEUE_ID,
  scheduleKey,
  schedulePosition,
  ScheduleProperty,
  scheduleTopic,
  targetStoreTopic,
} from './schedule-records.js';
import type { ScheduleWheel, WheelEntry } from './schedule-wheel.js';

export interface SchedulerOptions {
  /** How often due entries are claimed; default 20 ms. */
  tickMs?: number;
  /** Claimed this far ahead and released from memory at their exact ms; default 50 ms. */
  lookAheadMs?: number;
  /** A claim not completed within this is handed out again; default 30 s. */
  leaseMs?: number;
  /** Claimed entries held in memory at most (back-pressure on claims); default 50,000. */
  maxHeld?: number;
  /** How often the wheel's mark is checked; default 500 ms. */
  checkIntervalMs?: number;
  /** The longest the ticker goes without a claim once one found nothing due; default 1 s.
   *  Entries reach the wheel only from this broker (feed, rebuild), which ends the wait at once,
   *  so this bounds how late what nobody announces is seen — a wall clock that jumps forward, a
   *  wheel lost to a Redis flush or failover (the mark check every checkIntervalMs sees that
   *  too): an idle broker asks Redis once a second rather than at every tick (50 times). */
  maxQuietMs?: number;
  /** Entries fed but not yet in the wheel, at most, before the feeder drops them and leaves
   *  them to a rebuild from the log; default 1,000,000. */
  maxFeedBacklog?: number;
}

/** What query by id knows of a delayed message. */
export interface ScheduledLookup {
  record: StoredMessage;
  deliverAtMs: number;
  state: 'SCHEDULED' | 'CANCELLED' | 'DELIVERED';
  /** The dispatched copy (state DELIVERED). */
  copy?: StoredMessage;
}

interface TopicState {
  /** Queue-0 offset below which every schedule record is finished. */
  checkpoint: number;
  /** Finished (dispatched or cancelled) queue-0 offsets above the checkpoint. */
  finished: OffsetBitmap;
  /** Dispatched logOffsets not yet in a done mark. */
  unmarked: number[];
}

interface Held {
  logOffset: number;
  claimId: string;
}

const CLAIM_MAX = 5_000;
const DISPATCH_BATCH = 1_000;
/** Batches dispatched at once: one's fdatasync overlaps the next one's reads. */
const DISPATCH_IN_FLIGHT = 3;
const SCAN_BATCH = 1_000;

export class Scheduler {
  private readonly topics = new Map<string, TopicState>();
  /** Cancelled logOffsets (answers CANCELLED without a key lookup). */
  private readonly cancelled = new Set<number>();
  private readonly dispatching = new Map<number, Promise<void>>();
  private readonly cancelling = new Map<number, Promise<boolean>>();
  private readonly heap = new MinHeap<Held>();
  private readonly claims = new Map<string, number>();
  private feed: WheelEntry[] = [];
  private feeding = false;
  private wheelId: string | null = null;
  private ready = false;
  /** Set once recover() has read the marks: the retention floor is known. */
  private recovered = false;
  private needRebuild = true;
  private fedHighWater = -1;
  private maintaining: Promise<void> | undefined;
  private releasing: Promise<void> | undefined;
  private claiming: Promise<void> | undefined;
  /** No claim before this (performance.now() ms): the last claim found nothing due until then. */
  private quietUntil = 0;
  /** Bumped when entries reach the wheel other than by a claim (feed, rebuild): a claim that
   *  started before does not set a quiet time from what it saw. */
  private wheelChanges = 0;
  /** The done marks being written (dispatch starts them; close waits for them). */
  private marking: Promise<void> | undefined;
  private releaseNeeded = false;
  private closed = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;
  private lastWarnMs = 0;
  private readonly options: Required<SchedulerOptions>;
  /** Delayed messages dispatched since start (stats, tests). */
  dispatched = 0;
  /** Wheel rebuilds since start (the first one at start included). */
  rebuilds = 0;

  constructor(
    private readonly core: BrokerCore,
    private readonly wheel: ScheduleWheel,
    options: SchedulerOptions = {},
  ) {
    this.options = {
      tickMs: 20,
      lookAheadMs: 50,
      leaseMs: 30_000,
      maxHeld: 50_000,
      checkIntervalMs: 500,
      maxQuietMs: 1_000,
      maxFeedBacklog: 1_000_000,
      ...options,
    };
  }

  /** Reads every schedule topic's marks and finds what is finished (once, at broker start). */
  async recover(): Promise<void> {
    const store = this.core.store;
    for (const name of store.topics()) {
      if (!isScheduleTopic(name)) continue;
      const state = this.state(name);
      const done = new Set<number>();
      let from = store.queueOffsets(name, MARK_QUEUE_ID).minQueueOffset;
      for (;;) {
        const page = await store.readQueue(name, MARK_QUEUE_ID, from, { maxMessages: SCAN_BATCH });
        for (const record of page.messages) {
          const mark = decodeScheduleMark(record.body, `schedule mark at ${record.logOffset}`);
          state.checkpoint = Math.max(state.checkpoint, mark.checkpoint);
          for (const logOffset of mark.logOffsets) {
            done.add(logOffset);
            if (mark.op === 'cancel') this.cancelled.add(logOffset);
          }
        }
        if (!movedOn(page, from)) break;
        from = page.nextQueueOffset;
      }
      // records due by now and not marked done may have been dispatched just before a crash:
      // the copy's key says so. "Now" is at least the log's last store time: a copy is stored
      // at or after its due time, and store time never goes back, while the wall clock may
      // have since (a record due after it, dispatched before the restart, would go again)
      const dueBy = Math.max(Date.now(), store.lastStoreTimestampMs()) + this.options.lookAheadMs;
      await this.scan(name, async (record) => {
        if (done.has(record.logOffset)) {
          state.finished.add(record.queueOffset);
          return;
        }
        if (deliverAtOf(record) > dueBy) return;
        const target = targetStoreTopic(name, record.properties[ScheduleProperty.targetTopic]);
        const copies = await store.queryByKey(target, scheduleKey(record.logOffset), 1);
        if (copies.length > 0) {
          state.finished.add(record.queueOffset);
          state.unmarked.push(record.logOffset);
        }
      });
      this.advance(state);
    }
    await this.writeDoneMarks();
    this.recovered = true;
  }

  /** The lowest logOffset of a schedule record not finished yet, for retention: the segment
   *  holding it and every later one (its marks, its copy's key) are kept, whatever their age.
   *  Before recovery 0 (keep everything); Infinity when nothing is pending. */
  async retentionFloor(): Promise<number> {
    if (!this.recovered) return 0;
    const store = this.core.store;
    let floor = Number.POSITIVE_INFINITY;
    for (const [name, state] of this.topics) {
      if (store.queueIds(name).length === 0) continue;
      // every record below the checkpoint is finished; the one at it is not
      const from = Math.max(
        state.checkpoint,
        store.queueOffsets(name, SCHEDULE_QUEUE_ID).minQueueOffset,
      );
      // the entry's position, not its record's: a damaged record there must hold retention
      // back, not let it delete every pending delayed message after it
      const [first] = (await store.queueEntries(name, SCHEDULE_QUEUE_ID, from, 1)).entries;
      if (first !== undefined) floor = Math.min(floor, first.logOffset);
    }
    return floor;
  }

  start(): void {
    this.tickTimer = setInterval(() => this.tick(), this.options.tickMs);
    this.checkTimer = setInterval(() => this.maintain(), this.options.checkIntervalMs);
    this.tickTimer.unref();
    this.checkTimer.unref();
    this.maintain();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.tickTimer);
    clearInterval(this.checkTimer);
    clearTimeout(this.releaseTimer);
    await this.maintaining;
    await this.claiming;
    await this.releasing;
    await this.marking;
    await this.writeDoneMarks().catch(() => undefined);
  }

  /** The schedule record of a delayed message of `topic` (`record` built as for an ordinary
   *  publish, body sealed), due at `deliverAtMs`: the publisher appends it with the rest of its
   *  batch, in one append (all of the batch is stored, or none), then calls `scheduled`. */
  scheduleRecord(
    topic: TopicDescriptor,
    record: AppendMessage,
    deliverAtMs: number,
  ): AppendMessage {
    return {
      ...record,
      topic: scheduleTopic(topic.tenantId, topic.instanceId),
      queueId: SCHEDULE_QUEUE_ID,
      flags: (record.flags ?? 0) | MessageFlags.DELAYED,
      properties: {
        ...record.properties,
        [ScheduleProperty.deliverAtMs]: String(deliverAtMs),
        [ScheduleProperty.targetTopic]: topic.topic,
        [ScheduleProperty.targetQueueId]: String(record.queueId),
      },
    };
  }

  /** Schedule records of `topic` just made durable (built by scheduleRecord): they join the
   *  wheel and are traced SCHEDULED. */
  scheduled(
    topic: TopicDescriptor,
    records: readonly {
      logOffset: number;
      storeTimestampMs: number;
      queueId: number;
      deliverAtMs: number;
    }[],
  ): void {
    this.state(scheduleTopic(topic.tenantId, topic.instanceId));
    for (const record of records)
      this.feed.push({ deliverAtMs: record.deliverAtMs, logOffset: record.logOffset });
    this.core.traceLog?.record(
      topic.tenantId,
      topic.instanceId,
      records.map((record) => ({
        position: schedulePosition(topic.topic, record.logOffset),
        type: 'SCHEDULED',
        time: record.storeTimestampMs,
        queueId: record.queueId,
      })),
    );
    this.pumpFeed();
  }

  /** Cancels a delayed message not yet dispatched: durable when it resolves true. Dispatched:
   *  Conflict. Not a delayed message (unknown, another topic's, or any other message): false. */
  async cancel(topic: TopicDescriptor, messageId: string): Promise<boolean> {
    const found = await this.lookup(topic, messageId);
    if (found === null) return false;
    const logOffset = found.record.logOffset;
    if (found.state === 'CANCELLED') return true;
    if (found.state === 'DELIVERED')
      throw new WharfError('Conflict', 'the delayed message was delivered already');
    await this.dispatching.get(logOffset);
    const earlier = this.cancelling.get(logOffset);
    if (earlier !== undefined) {
      if (await earlier) return true;
      throw new WharfError('Unavailable', 'the cancel could not be stored', { retryAfterMs: 1000 });
    }
    const state = this.state(found.record.topic);
    if (this.isFinished(state, found.record.queueOffset)) {
      if (this.cancelled.has(logOffset)) return true;
      throw new WharfError('Conflict', 'the delayed message was delivered already');
    }
    const cancelling = this.appendMarks(found.record.topic, 'cancel', [logOffset]).then(
      () => true,
      (error: unknown) => {
        this.cancelling.delete(logOffset);
        throw error;
      },
    );
    this.cancelling.set(
      logOffset,
      cancelling.catch(() => false),
    );
    await cancelling;
    state.finished.add(found.record.queueOffset);
    this.cancelled.add(logOffset);
    this.cancelling.delete(logOffset);
    this.advance(state);
    this.core.traceLog?.record(topic.tenantId, topic.instanceId, [
      {
        position: schedulePosition(topic.topic, logOffset),
        type: 'CANCELLED',
        time: Date.now(),
        queueId: Number(found.record.properties[ScheduleProperty.targetQueueId]),
      },
    ]);
    // best effort: a claimed or left-over entry is skipped at dispatch by the mark
    this.wheel.cancel([logOffset]).catch(() => undefined);
    return true;
  }

  /** The delayed message a message id names, with its state; null when the id names none of
   *  this topic's schedule records (an ordinary message, or nothing). */
  async lookup(topic: TopicDescriptor, messageId: string): Promise<ScheduledLookup | null> {
    const position = this.core.ids.decode(messageScope(topic), messageId);
    if (position === null || position.brokerId !== this.core.brokerId) return null;
    const record = await this.core.store.readMessage(position.logOffset);
    if (
      record === null ||
      record.topic !== scheduleTopic(topic.tenantId, topic.instanceId) ||
      record.queueId !== SCHEDULE_QUEUE_ID ||
      record.properties[ScheduleProperty.targetTopic] !== topic.topic ||
      // a topic deleted and created again under its name does not see the old one's messages
      // (by the log position of the deletion, not by clocks: createdAt is a gateway's)
      this.targetDeleted(record)
    )
      return null;
    const deliverAtMs = deliverAtOf(record);
    if (this.cancelled.has(record.logOffset)) return { record, deliverAtMs, state: 'CANCELLED' };
    const state = this.topics.get(record.topic);
    if (
      state !== undefined &&
      !this.isFinished(state, record.queueOffset) &&
      !this.dispatching.has(record.logOffset)
    )
      return { record, deliverAtMs, state: 'SCHEDULED' };
    await this.dispatching.get(record.logOffset);
    const copies = await this.core.store.queryByKey(
      storeTopic(topic),
      scheduleKey(record.logOffset),
      1,
    );
    const copy = copies[0];
    if (copy === undefined) return { record, deliverAtMs, state: 'CANCELLED' };
    return { record, deliverAtMs, state: 'DELIVERED', copy };
  }

  /** Pending entries in the wheel and held in memory (stats). */
  stats(): Record<string, number> {
    return {
      scheduleHeld: this.heap.size,
      scheduleFeedBacklog: this.feed.length,
      scheduleDispatched: this.dispatched,
      scheduleWheelReady: this.ready ? 1 : 0,
      scheduleWheelRebuilds: this.rebuilds,
    };
  }

  /** Whether the wheel holds every schedule record (tests, benchmarks): built, and nothing left
   *  to feed, in the queue or in a call still in flight. */
  isReady(): boolean {
    return this.ready && this.feed.length === 0 && !this.feeding;
  }

  // ---- wheel upkeep ----

  /** One check at a time: rebuild when asked to or when the mark says the wheel is not ours. */
  private maintain(): void {
    if (this.maintaining !== undefined || this.closed) return;
    this.maintaining = this.check()
      .catch((error: unknown) => this.warn(error, 'delay wheel check failed'))
      .finally(() => (this.maintaining = undefined));
  }

  private async check(): Promise<void> {
    if (!this.needRebuild && this.wheelId !== null) {
      const mark = await this.wheel.mark();
      // flushed (null), replaced by another id, left mid-rebuild, or rolled back to a backup
      // older than what was fed: the wheel no longer holds every pending entry
      if (
        mark === null ||
        mark.wheelId !== this.wheelId ||
        mark.state !== 'ready' ||
        mark.scheduledLogOffset < this.fedHighWater
      ) {
        this.core.logger.warn(
          { mark, wheelId: this.wheelId, fedHighWater: this.fedHighWater },
          'delay wheel lost or stale: rebuilding it from the schedule records',
        );
        this.needRebuild = true;
      }
    }
    if (!this.needRebuild) return;
    try {
      await this.rebuild();
    } catch (error) {
      // Rebuild again at the next check, whatever step failed: a finishRebuild that timed out
      // after it ran leaves a ready mark the check would trust while this broker is not ready,
      // and nothing would be claimed again.
      this.needRebuild = true;
      throw error;
    }
  }

  private async rebuild(): Promise<void> {
    const startedAt = Date.now();
    this.ready = false;
    this.wheelId = null;
    this.fedHighWater = -1;
    // what is held is claimed from the old wheel: the new one hands it out again
    this.heap.clear();
    this.claims.clear();
    const wheelId = randomUUID();
    await this.wheel.beginRebuild(wheelId);
    this.needRebuild = false;
    this.wheelId = wheelId; // the feeder now adds live publishes to the new wheel
    this.pumpFeed();
    const entries: WheelEntry[] = [];
    let highest = -1;
    let dropped = 0;
    for (const name of this.core.store.topics()) {
      if (!isScheduleTopic(name)) continue;
      const state = this.state(name);
      await this.scan(name, (record) => {
        highest = Math.max(highest, record.logOffset);
        if (this.isFinished(state, record.queueOffset)) return Promise.resolve();
        if (this.targetDeleted(record)) {
          dropped++;
          this.finish(state, record);
        } else entries.push({ deliverAtMs: deliverAtOf(record), logOffset: record.logOffset });
        return Promise.resolve();
      });
    }
    if (dropped > 0) this.markLater();
    if ((await this.wheel.load(wheelId, entries)) === 'lost') {
      this.needRebuild = true;
      return;
    }
    if ((await this.wheel.finishRebuild(wheelId, highest, entries.length)) === 'lost') {
      this.needRebuild = true;
      return;
    }
    if (this.wheelId !== wheelId) return;
    this.fedHighWater = Math.max(this.fedHighWater, highest);
    this.wheelChanged();
    this.ready = true;
    this.rebuilds++;
    this.core.logger.info(
      { pending: entries.length, dropped, durationMs: Date.now() - startedAt },
      'delay wheel rebuilt from the schedule records',
    );
  }

  /** Feeds appended schedule records to the wheel, one call at a time, in append order. */
  private pumpFeed(): void {
    if (this.feeding || this.closed || this.wheelId === null || this.feed.length === 0) return;
    this.feeding = true;
    const wheelId = this.wheelId;
    const batch = this.feed.splice(0, 5_000);
    this.wheel
      // the mark as the feeder and the rebuild set it: a wheel below it lost entries (rolled back)
      .schedule(wheelId, batch, this.fedHighWater)
      .then(
        (answer) => {
          if (answer === 'lost') {
            this.feed.unshift(...batch);
            this.lose(wheelId);
            return;
          }
          this.wheelChanged();
          if (this.wheelId === wheelId)
            for (const entry of batch)
              this.fedHighWater = Math.max(this.fedHighWater, entry.logOffset);
        },
        (error: unknown) => {
          // Redis is away: keep them (or leave them to the rebuild from the log past a bound)
          if (this.feed.length + batch.length > this.options.maxFeedBacklog) {
            this.feed = [];
            this.needRebuild = true;
          } else this.feed.unshift(...batch);
          this.warn(error, 'delay wheel feed failed; retrying');
          return new Promise<void>((resolve) => setTimeout(resolve, 200).unref());
        },
      )
      .finally(() => {
        this.feeding = false;
        this.pumpFeed();
      });
  }

  /** Entries may be due sooner than the last claim saw: the next tick claims. */
  private wheelChanged(): void {
    this.wheelChanges++;
    this.quietUntil = 0;
  }

  private lose(wheelId: string): void {
    this.wheelChanged();
    if (this.wheelId !== wheelId) return;
    this.ready = false;
    this.needRebuild = true;
    this.maintain();
  }

  // ---- claiming and dispatch ----

  private tick(): void {
    if (!this.ready || this.claiming !== undefined || this.closed || this.wheelId === null) return;
    if (!this.releaseNeeded && performance.now() < this.quietUntil) return;
    this.claiming = this.claim(this.wheelId)
      .catch((error: unknown) => {
        // a claim that timed out may have been taken in Redis: give it back at the next tick
        // rather than wait for its lease (what is held twice is dispatched once)
        this.releaseNeeded = true;
        this.warn(error, 'delay wheel claim failed');
      })
      .finally(() => (this.claiming = undefined));
  }

  private async claim(wheelId: string): Promise<void> {
    if (this.releaseNeeded) {
      if ((await this.wheel.releaseClaims(wheelId)) === 'lost') return this.lose(wheelId);
      this.releaseNeeded = false;
      this.claims.clear();
    }
    while (this.heap.size < this.options.maxHeld && this.wheelId === wheelId) {
      const changes = this.wheelChanges;
      const now = Date.now();
      const asked = performance.now();
      const max = Math.min(CLAIM_MAX, this.options.maxHeld - this.heap.size);
      const answer = await this.wheel.claimDue(
        wheelId,
        now,
        now + this.options.lookAheadMs,
        max,
        this.options.leaseMs,
      );
      if (answer.status === 'lost') return this.lose(wheelId);
      if (answer.status === 'building') return;
      if (answer.claim === null) {
        // nothing due: no need to ask again before the earliest entry or lease comes due (less
        // the look-ahead), unless entries reached the wheel meanwhile
        if (this.wheelChanges !== changes) return;
        const next = answer.nextDueMs;
        const { maxQuietMs, lookAheadMs } = this.options;
        const wait = Math.min(maxQuietMs, next === null ? maxQuietMs : next - lookAheadMs - now);
        // counted from when it asked: a slow answer does not push the next claim later
        this.quietUntil = wait > 0 ? asked + wait : 0;
        return;
      }
      if (this.wheelId !== wheelId) return;
      const { claimId, entries } = answer.claim;
      this.claims.set(claimId, entries.length);
      for (const entry of entries)
        this.heap.push(entry.deliverAtMs, { logOffset: entry.logOffset, claimId });
      this.armRelease();
      if (entries.length < max) return;
    }
  }

  private armRelease(): void {
    if (this.releasing !== undefined || this.closed) return;
    const top = this.heap.peekKey();
    if (top === undefined) return;
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(
      () => {
        this.releaseTimer = undefined;
        this.releasing = this.release()
          .catch((error: unknown) => this.warn(error, 'delayed dispatch failed'))
          .finally(() => {
            this.releasing = undefined;
            this.armRelease();
          });
      },
      Math.max(0, top - Date.now()),
    );
  }

  /** Dispatches what is due now, earliest first, in batches. */
  private async release(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for (;;) {
      const now = Date.now();
      const batch: Held[] = [];
      while (batch.length < DISPATCH_BATCH && (this.heap.peekKey() ?? Infinity) <= now)
        batch.push(this.heap.pop() as Held);
      if (batch.length === 0) break;
      // never rejects: a failed batch is logged, its claim's lease brings it back
      const dispatching: Promise<void> = this.dispatch(batch)
        .catch((error: unknown) => this.warn(error, 'delayed dispatch failed'))
        .finally(() => inFlight.delete(dispatching));
      inFlight.add(dispatching);
      if (inFlight.size >= DISPATCH_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  private async dispatch(batch: Held[]): Promise<void> {
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const mine: Held[] = [];
    // Wait out every earlier dispatch of these records, then take them all in one synchronous
    // step: after a dispatch that failed (its record not finished), the holds that waited on it
    // must not each go on to dispatch the record. The first to take it dispatches it; the others
    // see that one and wait again. A batch never holds a record while it waits (no two batches
    // wait on each other).
    for (;;) {
      const earlier = new Set<Promise<void>>();
      for (const held of batch) {
        const dispatching = this.dispatching.get(held.logOffset);
        if (dispatching !== undefined) earlier.add(dispatching);
      }
      if (earlier.size === 0) break;
      await Promise.all(earlier);
    }
    for (const held of batch) {
      if (this.dispatching.get(held.logOffset) === done) {
        this.completeOne(held.claimId); // twice in one batch (a reclaimed claim): once is enough
        continue;
      }
      this.dispatching.set(held.logOffset, done);
      mine.push(held);
    }
    try {
      // one read for the batch (nearby records together) and no promise per record
      const cancels =
        this.cancelling.size === 0
          ? null
          : await Promise.all(
              mine.map((held) => this.cancelling.get(held.logOffset) ?? Promise.resolve(false)),
            );
      const records = await this.core.store.readMessages(mine.map((held) => held.logOffset));
      const copies: AppendMessage[] = [];
      const sources: StoredMessage[] = [];
      const dropped: StoredMessage[] = [];
      /** Per record topic: a live schedule topic (asked once a batch) — not one whose instance
       *  was deleted (the schedule topic with it): nothing of that is dispatched. */
      const live = new Map<string, boolean>();
      for (const [i, record] of records.entries()) {
        if (record === null || cancels?.[i] === true || record.queueId !== SCHEDULE_QUEUE_ID)
          continue;
        let alive = live.get(record.topic);
        if (alive === undefined) {
          alive =
            isScheduleTopic(record.topic) && this.core.store.queueIds(record.topic).length > 0;
          live.set(record.topic, alive);
        }
        if (!alive) continue;
        if (this.isFinished(this.state(record.topic), record.queueOffset)) continue;
        // its topic was deleted since (and maybe created again): finished, never dispatched
        if (this.targetDeleted(record)) dropped.push(record);
        else {
          copies.push(this.copyOf(record));
          sources.push(record);
        }
      }
      this.finishAll(dropped);
      this.sealIds(copies, sources);
      if (copies.length > 0) {
        await this.core.store.append(copies);
        this.finishAll(sources);
        this.dispatched += copies.length;
      }
      if (copies.length > 0 || dropped.length > 0) this.markLater();
      for (const held of mine) this.completeOne(held.claimId);
    } finally {
      for (const held of mine)
        if (this.dispatching.get(held.logOffset) === done) this.dispatching.delete(held.logOffset);
      resolveDone();
    }
  }

  /** Whether the record's target topic was deleted after it was scheduled (the store keeps
   *  the log position of a topic's deletion durably, so this holds after restarts too). */
  private targetDeleted(record: StoredMessage): boolean {
    const target = targetStoreTopic(record.topic, record.properties[ScheduleProperty.targetTopic]);
    return this.core.store.deletedAfter(target, record.logOffset);
  }

  /** A record dispatched or dropped: finished now, in a done mark soon. */
  private finish(state: TopicState, record: StoredMessage): void {
    state.finished.add(record.queueOffset);
    state.unmarked.push(record.logOffset);
    this.advance(state);
  }

  /** finish() for a batch: one advance of each topic's checkpoint. */
  private finishAll(records: readonly StoredMessage[]): void {
    if (records.length === 0) return;
    const byTopic = new Map<string, StoredMessage[]>();
    for (const record of records) {
      let list = byTopic.get(record.topic);
      if (list === undefined) byTopic.set(record.topic, (list = []));
      list.push(record);
    }
    for (const [name, list] of byTopic) {
      const state = this.state(name);
      state.finished.addAll(list.map((record) => record.queueOffset));
      for (const record of list) state.unmarked.push(record.logOffset);
      this.advance(state);
    }
  }

  /** Writes the done marks waiting, one write at a time, each taking every mark waiting by then. */
  private markLater(): void {
    const marking: Promise<void> = (this.marking ?? Promise.resolve())
      .then(() => this.writeDoneMarks())
      .catch((error: unknown) => this.warn(error, 'done marks failed'))
      .finally(() => {
        if (this.marking === marking) this.marking = undefined;
      });
    this.marking = marking;
  }

  private completeOne(claimId: string): void {
    const left = this.claims.get(claimId);
    if (left === undefined) return;
    if (left > 1) {
      this.claims.set(claimId, left - 1);
      return;
    }
    this.claims.delete(claimId);
    // not completed (Redis away): the lease runs out and the batch comes back, skipped as done
    this.wheel.complete(claimId).catch(() => undefined);
  }

  /** The copy users receive: the original message id, tag, keys, properties and publish time. */
  private copyOf(record: StoredMessage): AppendMessage {
    const userTopic = record.properties[ScheduleProperty.targetTopic];
    const properties: Record<string, string> = {};
    for (const [name, value] of Object.entries(record.properties)) {
      if (name !== ScheduleProperty.deliverAtMs && name !== ScheduleProperty.targetTopic)
        if (name !== ScheduleProperty.targetQueueId) properties[name] = value;
    }
    properties[SystemProperty.originPublishTime] = String(record.storeTimestampMs);
    properties[SystemProperty.deliverAt] = String(deliverAtOf(record));
    return {
      topic: targetStoreTopic(record.topic, userTopic),
      queueId: Number(record.properties[ScheduleProperty.targetQueueId]),
      body: record.body,
      bornTimestampMs: record.bornTimestampMs,
      tag: record.tag,
      // the user's keys; the schedule record's dedupId key stays with it
      keys: [...record.keys.filter((key) => !isSystemName(key)), scheduleKey(record.logOffset)],
      properties,
      flags: record.flags & ~MessageFlags.DELAYED,
    };
  }

  /** Sets each copy's original message id, one cipher call per target topic (scope). */
  private sealIds(copies: AppendMessage[], sources: StoredMessage[]): void {
    const byScope = new Map<string, number[]>();
    for (const [i, copy] of copies.entries()) {
      const scope = copy.topic; // messageScope is the store topic name
      let list = byScope.get(scope);
      if (list === undefined) byScope.set(scope, (list = []));
      list.push(i);
    }
    for (const [scope, indexes] of byScope) {
      const ids = this.core.ids.encode(
        scope,
        indexes.map((i) => ({ brokerId: this.core.brokerId, logOffset: sources[i].logOffset })),
      );
      for (const [k, i] of indexes.entries())
        (copies[i].properties as Record<string, string>)[SystemProperty.messageId] = ids[k];
    }
  }

  // ---- schedule topics ----

  private state(name: string): TopicState {
    let state = this.topics.get(name);
    if (state === undefined) {
      state = { checkpoint: 0, finished: new OffsetBitmap(), unmarked: [] };
      this.topics.set(name, state);
    }
    return state;
  }

  private isFinished(state: TopicState, queueOffset: number): boolean {
    return queueOffset < state.checkpoint || state.finished.has(queueOffset);
  }

  private advance(state: TopicState): void {
    state.checkpoint = state.finished.contiguousEnd(state.checkpoint);
    state.finished.dropBelow(state.checkpoint);
  }

  /** Offsets [from, to) a read passed over: finished without a dispatch. */
  private passOver(state: TopicState, from: number, to: number): void {
    if (to <= from) return;
    for (let offset = from; offset < to; offset++) {
      if (!this.isFinished(state, offset)) state.finished.add(offset);
    }
    this.advance(state);
  }

  /** Visits queue 0 of a schedule topic from its checkpoint, in log order. */
  private async scan(name: string, visit: (record: StoredMessage) => Promise<void>): Promise<void> {
    const state = this.state(name);
    let from = Math.max(
      state.checkpoint,
      this.core.store.queueOffsets(name, SCHEDULE_QUEUE_ID).minQueueOffset,
    );
    for (;;) {
      const page = await this.core.store.readQueue(name, SCHEDULE_QUEUE_ID, from, {
        maxMessages: SCAN_BATCH,
      });
      // what the read passed over (a damaged record, expired ones) is finished: it will never
      // be dispatched, and the checkpoint, which holds retention back, moves on past it
      let next = from;
      for (const record of page.messages) {
        this.passOver(state, next, record.queueOffset);
        next = record.queueOffset + 1;
        await visit(record);
      }
      if (!movedOn(page, from)) return;
      this.passOver(state, next, page.nextQueueOffset);
      from = page.nextQueueOffset;
    }
  }

  private async writeDoneMarks(): Promise<void> {
    for (const [name, state] of this.topics) {
      if (state.unmarked.length === 0) continue;
      const logOffsets = state.unmarked;
      state.unmarked = [];
      await this.appendMarks(name, 'done', logOffsets).catch((error: unknown) => {
        state.unmarked.push(...logOffsets);
        throw error;
      });
    }
  }

  private async appendMarks(name: string, op: 'cancel' | 'done', logOffsets: number[]) {
    const state = this.state(name);
    await this.core.store.append([
      {
        topic: name,
        queueId: MARK_QUEUE_ID,
        body: encodeScheduleMark({ op, logOffsets, checkpoint: state.checkpoint }),
        bornTimestampMs: Date.now(),
        flags: MessageFlags.SYSTEM,
      },
    ]);
  }

  private warn(error: unknown, what: string): void {
    const now = Date.now();
    if (now - this.lastWarnMs < 5_000) return; // one line per few seconds while Redis is away
    this.lastWarnMs = now;
    this.core.logger.warn({ err: error }, what);
  }
}

/** Whether a scan goes on after this page (past a gap left by retention, too). */
function movedOn(page: ReadQueueResult, from: number): boolean {
  if (page.status === 'NO_MESSAGE' || page.status === 'OFFSET_OVERFLOW') return false;
  return page.nextQueueOffset > from;
}

function deliverAtOf(record: StoredMessage): number {
  return Number(record.properties[ScheduleProperty.deliverAtMs] ?? 0);
}

/** A delayed message as query by id shows it before (and instead of) its copy. */
export function scheduledView(view: MessageView, found: ScheduledLookup): MessageView {
  return {
    ...view,
    queueId: Number(found.record.properties[ScheduleProperty.targetQueueId]),
    queueOffset: -1,
    deliverAt: found.deliverAtMs,
    scheduleState: found.state,
  };
}
