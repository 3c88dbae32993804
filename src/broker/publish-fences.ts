// Publish fences: a cluster gateway whose publish call to this broker failed without an answer
// (the connection dropped, the deadline passed) cannot know whether the messages were stored
// here; it sends them to another broker, and before that leaves a fence for this broker — the
// call's request id, its topic, the queues it chose and when it was sent (in Redis, beside the
// registry: meta/publish-fences.ts). This broker applies each fence when it starts (before it
// serves), as each is announced while it runs (meta/publish-fences.ts: pub/sub), and every
// second in case an announcement was missed: it looks in those queues, from the send time minus a
// clock-skew margin to their end, for messages stored under that request id
// (SystemProperty.requestId) and withdraws them (journaled: withdrawals.ts), so no group ever
// receives them; a delayed message of the call that is still waiting is cancelled instead. Then
// the fence is removed. The fences of a round are applied together: each queue is scanned once. So a gateway's failover stores a message once, not twice — unless a
// consumer received this broker's copy before the fence arrived (a partition that let the
// broker serve while the gateway could not reach it): then it is delivered twice, at least once
// as ever.
// A copy that answered a later publish as its duplicate (the client retrying with its dedupId) is
// vouched for before that answer goes out: a record keyed by its call id in the instance's
// internal topic `<tenant>/<instance>/%VOUCH%` (durable like any record, kept until retention),
// so a fence of the call that arrives later — even after a restart — leaves the copy.
import type { PublishFence, PublishFenceSource, TopicDescriptor } from '../model/index.js';
import { isWharfError } from '../errors.js';
import type { BrokerCore } from './broker-core.js';
import { messageScope, storeTopic, SystemProperty } from './names.js';
import { SCHEDULE_QUEUE_ID, scheduleTopic } from './schedule-records.js';
import type { Scheduler } from './scheduler.js';

const EMPTY = Buffer.alloc(0);

/** The internal topic holding an instance's vouches (queue 0; dropped with the instance). */
export function vouchTopic(tenantId: string, instanceId: string): string {
  return `${tenantId}/${instanceId}/%VOUCH%`;
}

/** How far before a call's send time its messages may carry store times (gateway and broker
 *  clocks differ by this much at most). */
export const FENCE_CLOCK_SKEW_MS = 10_000;
/** Fences applied per round. */
const FENCES_PER_ROUND = 100;
/** Records read per page of a queue scan. */
const SCAN_PAGE = 256;

/** How long an applied fence is remembered for the publishes of its call still running. */
const RECENT_FENCE_MS = 10 * 60_000;
/** Applied fences remembered at most (the oldest go first). */
const MAX_RECENT_FENCES = 10_000;

export class PublishFences {
  /** Messages withdrawn since start (stats, tests). */
  withdrawn = 0;
  /** Fences applied lately, by call id, in the order applied (see afterPublish). */
  private readonly recent = new Map<string, { fence: PublishFence; appliedAtMs: number }>();
  /** Calls vouched for lately (vouch), by call id, with when: a cache of their records. */
  private readonly vouched = new Map<string, number>();
  /** Vouch records being written, by call id. */
  private readonly vouching = new Map<string, Promise<void>>();

  constructor(
    private readonly core: BrokerCore,
    private readonly source: PublishFenceSource,
    private readonly scheduler: Scheduler | null,
    /** Told when copies were withdrawn or cancelled (the publisher forgets its dedup hits). */
    private readonly onWithdrawn: () => void = () => undefined,
  ) {}

  /** Applies the fences waiting now; resolves with how many were applied. */
  async applyPending(): Promise<number> {
    const { fences, unreadable } = await this.source.pending(FENCES_PER_ROUND);
    if (unreadable.length > 0) {
      this.core.logger.error(
        { requestIds: unreadable.slice(0, 10), count: unreadable.length },
        'publish fences this broker cannot read (a newer gateway wrote them?): not applied',
      );
    }
    if (fences.length === 0) return 0;
    // a call vouched for keeps its copies: its fence is only deleted
    const live: PublishFence[] = [];
    const kept: string[] = [];
    for (const fence of fences) {
      if (await this.isVouched(fence)) kept.push(fence.requestId);
      else live.push(fence);
    }
    if (kept.length > 0) {
      this.core.logger.warn(
        { requestIds: kept.slice(0, 10), count: kept.length },
        'publish fences left their copies: a later publish was answered with them as duplicates',
      );
    }
    // remembered before the scan: a publish of the call that finishes while the scan runs (past
    // the queue it reads) applies the fence again itself. Those vouched for while isVouched
    // read are left out here, in the same turn
    const now = Date.now();
    for (const fence of live) {
      if (this.vouched.has(fence.requestId)) continue;
      this.recent.delete(fence.requestId);
      this.recent.set(fence.requestId, { fence, appliedAtMs: now });
    }
    this.forgetOld(now);
    await this.apply(live);
    await this.source.done(fences.map((fence) => fence.requestId));
    return fences.length;
  }

  /** Whether fences were applied lately (afterPublish has anything to look at). */
  get remembersFences(): boolean {
    if (this.recent.size > 0) this.forgetOld(Date.now());
    return this.recent.size > 0;
  }

  /** Whether a message of a publish call names a call fenced lately (its gateway failed it over
   *  before this broker read it: a call queued during a stall). */
  fencedAny(messages: readonly { requestId?: string }[]): boolean {
    for (const message of messages)
      if (message.requestId !== undefined && this.fenced(message.requestId)) return true;
    return false;
  }

  /** Whether the copies of call `requestId` are fenced: stored here, they are not delivered
   *  (FencedCalls), even before the fence's withdrawal is journaled. */
  fenced(requestId: string): boolean {
    return this.recent.has(requestId) && !this.vouched.has(requestId);
  }

  /**
   * The copy of call `requestId` of `topic` is about to answer a later publish as its duplicate
   * (the client retrying with its dedupId): a client will hold it as stored, so a fence of the
   * call arriving after — after a restart too — leaves it: at worst the message is delivered
   * twice (its failed-over copy too), never lost. Resolves once the vouch is durable; the
   * answer waits for it.
   */
  async vouch(topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId'>, requestId: string) {
    const now = Date.now();
    // at once, before the record is durable: a fence applied meanwhile must leave the copy
    const known = this.vouched.has(requestId);
    this.vouched.delete(requestId);
    this.vouched.set(requestId, now);
    // never counted as fenced from now on (receives pass over fenced copies), however long
    // the vouch stays in memory
    this.recent.delete(requestId);
    this.forgetOld(now);
    const writing = this.vouching.get(requestId);
    if (writing !== undefined) return writing; // the answer waits for that record too
    if (known) return;
    const written = this.appendVouch(topic, requestId, now).catch((error: unknown) => {
      // not durable: the answer is refused (503), and its retry vouches again
      this.vouched.delete(requestId);
      throw error;
    });
    this.vouching.set(requestId, written);
    try {
      await written;
    } finally {
      this.vouching.delete(requestId);
    }
  }

  private async appendVouch(
    topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId'>,
    requestId: string,
    now: number,
  ): Promise<void> {
    await this.core.store.append([
      {
        topic: vouchTopic(topic.tenantId, topic.instanceId),
        queueId: 0,
        keys: [requestId],
        properties: {},
        body: EMPTY,
        bornTimestampMs: now,
        flags: 0,
        attempt: undefined,
      },
    ]);
  }

  /** Whether a fence's call was vouched for (this run, or before a restart: its record). */
  private async isVouched(fence: PublishFence): Promise<boolean> {
    if (this.vouched.has(fence.requestId)) return true;
    const name = vouchTopic(fence.topic.tenantId, fence.topic.instanceId);
    if (!this.core.store.queueIds(name).includes(0)) return false;
    const found = await this.core.store.queryByKey(name, fence.requestId, 1);
    if (found.length === 0) return false;
    this.vouched.set(fence.requestId, Date.now());
    return true;
  }

  /**
   * After a publish: when one of its calls was fenced while it ran (a stalled disk kept it past
   * the gateway's deadline, and the fence found nothing of it yet), its fence is applied again,
   * now that its messages are stored — else they would be delivered beside the copies the
   * gateway stored on another broker.
   */
  async afterPublish(requestIds: ReadonlySet<string>): Promise<void> {
    if (requestIds.size === 0) return;
    const fences: PublishFence[] = [];
    for (const requestId of requestIds) {
      const recent = this.recent.get(requestId);
      if (recent !== undefined) fences.push(recent.fence);
    }
    if (fences.length > 0) await this.apply(fences);
  }

  /** Drops remembered fences and vouches past RECENT_FENCE_MS, and the oldest past
   *  MAX_RECENT_FENCES. */
  private forgetOld(now: number): void {
    for (const [requestId, { appliedAtMs }] of this.recent) {
      if (appliedAtMs > now - RECENT_FENCE_MS && this.recent.size <= MAX_RECENT_FENCES) break;
      this.recent.delete(requestId);
    }
    for (const [requestId, atMs] of this.vouched) {
      if (atMs > now - RECENT_FENCE_MS && this.vouched.size <= MAX_RECENT_FENCES) break;
      this.vouched.delete(requestId);
    }
  }

  /** Withdraws the fenced calls' stored messages and cancels their waiting delayed ones, but
   *  for calls vouched for since they were fenced (afterPublish). */
  private async apply(all: readonly PublishFence[]): Promise<void> {
    const fences = all.filter((fence) => !this.vouched.has(fence.requestId));
    if (fences.length === 0) return;
    // A network blip fails many calls at once: each queue is scanned once for all the fences
    // naming it, from the earliest send time among them.
    const queues = new Map<string, Scan>();
    const schedules = new Map<string, Scan>();
    const fenceOf = new Map<string, PublishFence>();
    for (const fence of fences) {
      fenceOf.set(fence.requestId, fence);
      const name = storeTopic(fence.topic);
      const fromMs = fence.sentAtMs - FENCE_CLOCK_SKEW_MS;
      for (const queueId of fence.queueIds) add(queues, name, queueId, fromMs, fence.requestId);
      const scheduled = scheduleTopic(fence.topic.tenantId, fence.topic.instanceId);
      add(schedules, scheduled, SCHEDULE_QUEUE_ID, fromMs, fence.requestId);
    }
    // the schedule records first: one dispatched meanwhile has its copy in the queues below.
    // Each is also marked withdrawn (journaled), so a repeat of its dedupId stores the message
    // again, whether the record was cancelled here or its copy is withdrawn below; a record a
    // user cancelled is not marked, and stays a duplicate.
    let cancelled = 0;
    if (this.scheduler !== null) {
      for (const scan of schedules.values()) {
        const found = await this.scan(scan);
        for (const record of found)
          if (await this.cancel(this.scheduler, fenceOf.get(record.requestId), record.logOffset))
            cancelled++;
        await this.withdraw(scan, found);
      }
    }
    let withdrawn = 0;
    for (const scan of queues.values())
      withdrawn += await this.withdraw(scan, await this.scan(scan));
    this.withdrawn += withdrawn + cancelled;
    if (withdrawn + cancelled > 0) {
      this.onWithdrawn();
      this.core.logger.warn(
        {
          fences: fences.length,
          requestIds: fences.slice(0, 10).map((fence) => fence.requestId),
          withdrawn,
          cancelled,
        },
        'withdrew messages gateways stored on another broker after this one did not answer',
      );
    }
  }

  /** Journals the withdrawal of what a scan found and was not withdrawn yet; returns how many. */
  private async withdraw(scan: Scan, found: readonly Found[]): Promise<number> {
    const withdrawals = this.core.journal.withdrawals;
    const offsets = found
      .map((record) => record.queueOffset)
      .filter((offset) => !withdrawals.has(scan.name, scan.queueId, offset));
    if (offsets.length === 0) return 0;
    await this.core.journal.record([
      { op: 'withdraw', topic: scan.name, queue: scan.queueId, offsets },
    ]);
    return offsets.length;
  }

  /** The messages of a queue stored at or after `fromMs` under one of the scan's call ids. */
  private async scan(scan: Scan): Promise<Found[]> {
    const store = this.core.store;
    const found: Found[] = [];
    if (!store.queueIds(scan.name).includes(scan.queueId)) return found;
    let offset = await store.queueOffsetByTime(scan.name, scan.queueId, scan.fromMs);
    for (;;) {
      const page = await store.readQueue(scan.name, scan.queueId, offset, {
        maxMessages: SCAN_PAGE,
      });
      for (const message of page.messages) {
        const requestId = message.properties[SystemProperty.requestId];
        if (requestId !== undefined && scan.requestIds.has(requestId))
          found.push({ queueOffset: message.queueOffset, logOffset: message.logOffset, requestId });
      }
      // a FOUND page can be empty (every entry passed over as damaged): read on past it
      if (page.status !== 'FOUND' || page.nextQueueOffset <= offset) return found;
      offset = page.nextQueueOffset;
    }
  }

  /** Cancels a fenced call's delayed message still waiting; false when it was dispatched
   *  already (its copy in the target queue is withdrawn by the queue scans). */
  private async cancel(
    scheduler: Scheduler,
    fence: PublishFence | undefined,
    logOffset: number,
  ): Promise<boolean> {
    if (fence === undefined) return false;
    const [messageId] = this.core.ids.encode(messageScope(fence.topic), [
      { brokerId: this.core.brokerId, logOffset },
    ]);
    try {
      return await scheduler.cancel(fence.topic, messageId);
    } catch (error) {
      if (isWharfError(error) && error.code === 'Conflict') return false;
      throw error;
    }
  }
}

interface Scan {
  name: string;
  queueId: number;
  fromMs: number;
  requestIds: Set<string>;
}

interface Found {
  queueOffset: number;
  logOffset: number;
  requestId: string;
}

function add(
  scans: Map<string, Scan>,
  name: string,
  queueId: number,
  fromMs: number,
  requestId: string,
): void {
  const key = `${name}\u0000${queueId}`;
  const scan = scans.get(key);
  if (scan === undefined) {
    scans.set(key, { name, queueId, fromMs, requestIds: new Set([requestId]) });
    return;
  }
  scan.fromMs = Math.min(scan.fromMs, fromMs);
  scan.requestIds.add(requestId);
}
