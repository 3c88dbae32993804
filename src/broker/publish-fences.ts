// Publish fences: a cluster gateway whose publish call to this broker failed without an answer
// (the connection dropped, the deadline passed) cannot know whether the messages were stored
// here; it sends them to another broker, and before that leaves a fence for this broker — the
// call's request id, its topic, the queues it chose and when it was sent (in Redis, beside the
// registry: meta/publish-fences.ts). This broker applies each fence when it starts (before it
// serves) and every second while it runs: it looks in those queues, from the send time minus a
// clock-skew margin to their end, for messages stored under that request id
// (SystemProperty.requestId) and withdraws them (journaled: withdrawals.ts), so no group ever
// receives them; a delayed message of the call that is still waiting is cancelled instead. Then
// the fence is removed. So a gateway's failover stores a message once, not twice — unless a
// consumer received this broker's copy before the fence arrived (a partition that let the
// broker serve while the gateway could not reach it): then it is delivered twice, at least once
// as ever.
import type { PublishFence, PublishFenceSource } from '../model/index.js';
import { isWharfError } from '../errors.js';
import type { BrokerCore } from './broker-core.js';
import { messageScope, storeTopic, SystemProperty } from './names.js';
import { SCHEDULE_QUEUE_ID, scheduleTopic } from './schedule-records.js';
import type { Scheduler } from './scheduler.js';

/** How far before a call's send time its messages may carry store times (gateway and broker
 *  clocks differ by this much at most). */
export const FENCE_CLOCK_SKEW_MS = 10_000;
/** Fences applied per round. */
const FENCES_PER_ROUND = 100;
/** Records read per page of a queue scan. */
const SCAN_PAGE = 256;

export class PublishFences {
  /** Messages withdrawn since start (stats, tests). */
  withdrawn = 0;

  constructor(
    private readonly core: BrokerCore,
    private readonly source: PublishFenceSource,
    private readonly scheduler: Scheduler | null,
  ) {}

  /** Applies the fences waiting now; resolves with how many were applied. */
  async applyPending(): Promise<number> {
    const fences = await this.source.pending(FENCES_PER_ROUND);
    if (fences.length === 0) return 0;
    for (const fence of fences) await this.apply(fence);
    await this.source.done(fences.map((fence) => fence.requestId));
    return fences.length;
  }

  private async apply(fence: PublishFence): Promise<void> {
    const name = storeTopic(fence.topic);
    const store = this.core.store;
    const from = fence.sentAtMs - FENCE_CLOCK_SKEW_MS;
    const known = new Set(store.queueIds(name));
    // the schedule records first: one dispatched meanwhile has its copy in the queues below
    const cancelled = await this.cancelScheduled(fence, from);
    let withdrawn = 0;
    for (const queueId of new Set(fence.queueIds)) {
      if (!known.has(queueId)) continue;
      const offsets = await this.scan(name, queueId, from, fence.requestId);
      if (offsets.length === 0) continue;
      await this.core.journal.record([{ op: 'withdraw', topic: name, queue: queueId, offsets }]);
      withdrawn += offsets.length;
    }
    this.withdrawn += withdrawn + cancelled;
    if (withdrawn + cancelled > 0) {
      this.core.logger.warn(
        {
          requestId: fence.requestId,
          topic: name,
          withdrawn,
          cancelled,
        },
        'withdrew messages a gateway stored on another broker after this one did not answer',
      );
    }
  }

  /** Queue offsets at or after store time `fromMs` stored under `requestId`. */
  private async scan(
    name: string,
    queueId: number,
    fromMs: number,
    requestId: string,
  ): Promise<number[]> {
    const store = this.core.store;
    const found: number[] = [];
    let offset = await store.queueOffsetByTime(name, queueId, fromMs);
    for (;;) {
      const page = await store.readQueue(name, queueId, offset, { maxMessages: SCAN_PAGE });
      for (const message of page.messages)
        if (message.properties[SystemProperty.requestId] === requestId)
          found.push(message.queueOffset);
      if (page.nextQueueOffset <= offset || page.messages.length === 0) return found;
      offset = page.nextQueueOffset;
    }
  }

  /** Cancels the call's delayed messages still waiting (their schedule records). */
  private async cancelScheduled(fence: PublishFence, fromMs: number): Promise<number> {
    if (this.scheduler === null) return 0;
    const schedules = scheduleTopic(fence.topic.tenantId, fence.topic.instanceId);
    if (!this.core.store.queueIds(schedules).includes(SCHEDULE_QUEUE_ID)) return 0;
    const offsets = await this.scan(schedules, SCHEDULE_QUEUE_ID, fromMs, fence.requestId);
    if (offsets.length === 0) return 0;
    let cancelled = 0;
    for (const queueOffset of offsets) {
      const page = await this.core.store.readQueue(schedules, SCHEDULE_QUEUE_ID, queueOffset, {
        maxMessages: 1,
      });
      const record = page.messages[0];
      if (record?.queueOffset !== queueOffset) continue;
      const [messageId] = this.core.ids.encode(messageScope(fence.topic), [
        { brokerId: this.core.brokerId, logOffset: record.logOffset },
      ]);
      try {
        await this.scheduler.cancel(fence.topic, messageId);
        cancelled++;
      } catch (error) {
        // dispatched already: its copy in the target queue was withdrawn by the scan above
        if (!isWharfError(error) || error.code !== 'Conflict') throw error;
      }
    }
    return cancelled;
  }
}
