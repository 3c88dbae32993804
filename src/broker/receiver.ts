// Receive, ack and change visibility (POP consumption): hands out messages of a topic's queues
// to a group, invisible until a deadline, with a receipt handle each (each look is a PopReader
// pass; with nothing to hand out the receive parks in the long poll until its wait ends);
// redelivers what was not acked after invisibility plus the group's back-off; the background
// sweep moves what used its attempts to the dead-letter queue when nobody receives. Every state
// change is applied to the consumer ledger and journaled before the call answers.
import type { AckResult, VisibilityResult } from '../cluster/index.js';
import type {
  GroupDescriptor,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
} from '../model/index.js';
import { WharfError } from '../errors.js';
import type { Receipt } from '../protocol/index.js';
import type { BrokerCore } from './broker-core.js';
import type { LedgerEntry, Subscription } from './consumer-ledger.js';
import type { Inflight } from './queue-cursor.js';
import type { DeadLetters } from './dead-letters.js';
import { groupKey, receiptScope, storeTopic } from './names.js';
import { PopReader } from './pop-reader.js';
import { parseTagFilter } from './tag-filter.js';

/** How often a receive parked at its tenant's in-flight bound looks again by itself. */
const TENANT_BOUND_RECHECK_MS = 1000;

type Completion = LedgerEntry & { op: 'complete' };

export class Receiver {
  private readonly popReader: PopReader;
  /** Run before each look at the queues (a parked receive's too): the broker's stall gate
   *  (stall-gate.ts), so a receive parked across a stall does not take a copy a fence left
   *  meanwhile is about to withdraw. Undefined: go on at once. */
  beforeLook: () => Promise<void> | undefined = () => undefined;

  constructor(
    private readonly core: BrokerCore,
    private readonly deadLetters: DeadLetters,
  ) {
    this.popReader = new PopReader(core, deadLetters);
  }

  async receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    this.core.rememberGroup(topic, group);
    const filter = parseTagFilter(request.tags);
    const sub = await this.subscriptionFor(topic, group, request.consumerId);
    sub.lastReceiveMs = Date.now();
    sub.lastTags = filter === undefined || filter.tags.size === 0 ? null : filter.tags;
    // the wait is measured on the monotonic clock: a wall clock stepped back (NTP) must not
    // stretch it past the caller's deadline (a 503 from the gateway instead of an empty answer)
    const waitEnd = performance.now() + request.waitMs;
    const name = storeTopic(topic);
    const fifo = topic.messageType === 'FIFO';
    for (;;) {
      const held = this.beforeLook();
      if (held !== undefined) await held;
      // an aborted receive (client gone, credential revoked) takes nothing more
      if (this.core.longPoll.closed || signal?.aborted === true) return [];
      const version = this.core.longPoll.version(name);
      const { messages, progressed, capped, tenantAtBound } = await this.popReader.popOnce(
        sub,
        topic,
        group,
        request,
        filter,
      );
      if (messages.length > 0) {
        // a full batch (or one its byte budget cut) may have left more behind: let the next
        // waiting receive look
        if (messages.length === request.maxMessages || capped) this.core.longPoll.notify(name);
        return messages;
      }
      // its topic, group or instance was dropped meanwhile: nothing more can come through it
      // (a receive made again finds out what is there now). A notify wakes one waiter of a
      // subscription: pass it on, to the next receive parked on the dropped one (or on one
      // created again under its name)
      if (!this.core.ledger.isLive(sub)) {
        this.core.longPoll.notify(name);
        return [];
      }
      const waitMs = waitEnd - performance.now();
      if (waitMs <= 0 || this.core.longPoll.closed) return [];
      if (progressed) continue; // filtered entries were passed over: read on, do not park
      if (sub.busy.size > 0) {
        // other receives of this subscription are reading some queues: look again as soon as
        // one of them is done (not all: with more receivers than queues they take turns)
        await firstOf([...sub.busy.values()], waitMs);
        continue;
      }
      // at the tenant's in-flight bound: the pass that finds room wakes it; a look every second
      // as well, for room made between this look and the park
      const boundWakeMs = tenantAtBound ? Date.now() + TENANT_BOUND_RECHECK_MS : Infinity;
      await this.core.longPoll.park(
        name,
        topic.tenantId,
        Math.min(Date.now() + waitMs, sub.earliestDueMs(fifo), boundWakeMs),
        version,
        signal,
        sub.key,
      );
    }
  }

  async ack(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    handles: readonly string[],
  ): Promise<AckResult[]> {
    this.core.rememberGroup(topic, group);
    const results: AckResult[] = [];
    const entries: Completion[] = [];
    const counters = new Set<Subscription>();
    // one subscription lookup per consumer slot, not per handle (its key is a built string)
    const subs = this.subscriptionsOf(topic, group);
    const receipts = this.decodeReceipts(topic, group, handles, subs);
    const byQueue = new Map<Subscription, Map<number, Completion>>();
    for (const [i, receiptHandle] of handles.entries()) {
      const found = this.findDelivery(receipts[i] ?? null, subs);
      if (typeof found === 'string') {
        results.push({ receiptHandle, ok: false, code: found });
        continue;
      }
      const { sub, receipt } = found;
      let queues = byQueue.get(sub);
      if (queues === undefined) byQueue.set(sub, (queues = new Map<number, Completion>()));
      let entry = queues.get(receipt.queueId);
      if (entry === undefined) {
        entry = { op: 'complete', sub: sub.key, queue: receipt.queueId, offsets: [] };
        queues.set(receipt.queueId, entry);
        entries.push(entry);
      }
      if (entry.offsets.includes(receipt.queueOffset)) {
        results.push({ receiptHandle, ok: false, code: 'ReceiptHandleExpired' });
        continue;
      }
      entry.offsets.push(receipt.queueOffset);
      counters.add(sub);
      results.push({ receiptHandle, ok: true });
    }
    if (entries.length > 0) {
      // looked at before the acks apply: acks racing each other (or dead-letter moves) would
      // each find room made by the others and none would wake the receives
      const atCap = this.atCap(byQueue);
      await this.core.record(entries);
      const trace = this.core.traceLog;
      if (trace !== null) {
        // a broadcasting consumer's acks name it, as its deliveries do (a clustering group's
        // acks name none: nothing to look up on the ack path)
        trace.acked(
          topic,
          group,
          group.deliveryMode === 'BROADCASTING' ? this.withConsumerIds(entries, byQueue) : entries,
          this.core,
        );
      }
      for (const sub of counters) {
        let acked = 0;
        for (const entry of byQueue.get(sub)?.values() ?? []) acked += entry.offsets.length;
        this.core.counters.subscription(sub.key).acked.add(acked);
      }
      // FIFO queues hand out their next messages once the earlier ones are acked; a queue at
      // its in-flight cap (maxInflightPerQueue) hands out more once acks make room
      if (topic.messageType === 'FIFO' || atCap) this.core.longPoll.notify(storeTopic(topic));
    }
    return results;
  }

  async changeVisibility(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandle: string,
    invisibleMs: number,
  ): Promise<VisibilityResult> {
    this.core.rememberGroup(topic, group);
    const subs = this.subscriptionsOf(topic, group);
    const [receipt] = this.decodeReceipts(topic, group, [receiptHandle], subs);
    const found = this.findDelivery(receipt ?? null, subs);
    if (found === 'InvalidReceiptHandle')
      throw new WharfError('InvalidReceiptHandle', 'receipt handle is not valid');
    if (found === 'ReceiptHandleExpired') {
      throw new WharfError('ReceiptHandleExpired', 'the delivery of this receipt handle is over');
    }
    const nextVisibleMs = Date.now() + invisibleMs;
    const dueBefore = inflightOf(found)?.redeliverAtMs ?? Number.POSITIVE_INFINITY;
    await this.core.record([
      {
        op: 'vis',
        sub: found.sub.key,
        queue: found.receipt.queueId,
        offset: found.receipt.queueOffset,
        nextVisibleMs,
        redeliverAtMs: nextVisibleMs,
      },
    ]);
    // a parked receive waits until the earliest in-flight message comes due: one due sooner
    // now (released, or its invisibility shortened) wakes it to wait for that instead
    if (nextVisibleMs < dueBefore) this.core.longPoll.notify(storeTopic(topic));
    return { receiptHandle, nextVisibleTime: nextVisibleMs };
  }

  /** Undoes deliveries nobody saw — a cluster receive's answers that lost to another broker's,
   *  an answer whose client left or was refused before it was written: each message is visible
   *  again at once and the delivery does not count (no attempt used up, so none goes to the
   *  dead-letter queue for it). Handles no longer current are passed over. */
  async returnDeliveries(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    handles: readonly string[],
  ): Promise<void> {
    this.core.rememberGroup(topic, group);
    const subs = this.subscriptionsOf(topic, group);
    const receipts = this.decodeReceipts(topic, group, handles, subs);
    const now = Date.now();
    const entries: LedgerEntry[] = [];
    for (const receipt of receipts) {
      const found = this.findDelivery(receipt ?? null, subs);
      if (typeof found === 'string') continue;
      const { sub, receipt: r } = found;
      const inflight = inflightOf(found);
      if (inflight === undefined) continue;
      entries.push({
        op: 'vis',
        sub: sub.key,
        queue: r.queueId,
        offset: r.queueOffset,
        nextVisibleMs: now,
        redeliverAtMs: now,
        attempt: Math.max(0, inflight.attempt - 1),
      });
    }
    if (entries.length === 0) return;
    await this.core.record(entries);
    this.core.longPoll.notify(storeTopic(topic));
  }

  /** Moves due messages that used all their attempts to the dead-letter queue (background sweep,
   *  so dead letters appear even when nobody receives). */
  sweep(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    sub: Subscription,
    nowMs: number,
    idleMs: number,
  ): void {
    // receives move what is out of attempts themselves; the sweep is for groups nobody reads
    if (nowMs - sub.lastReceiveMs < idleMs) return;
    for (const [queueId, cursor] of sub.cursors) {
      if (sub.busy.has(queueId) || cursor.earliestDueMs() > nowMs) continue;
      const due = cursor.takeDue(nowMs, Number.MAX_SAFE_INTEGER);
      for (const offset of due) {
        const entry = cursor.inflight.get(offset);
        if (entry === undefined) continue;
        if (entry.attempt >= group.maxDeliveryAttempts)
          this.deadLetters.move(topic, group, sub, queueId, offset);
        else cursor.changeVisibility(offset, entry.nextVisibleMs, entry.redeliverAtMs); // back in the heap
      }
    }
  }

  /** The group's subscriptions on the topic by consumer slot, looked up once per slot. */
  private subscriptionsOf(
    topic: TopicDescriptor,
    group: GroupDescriptor,
  ): (consumerSlot: number) => Subscription | undefined {
    const groupName = groupKey(group);
    const topicName = storeTopic(topic);
    const bySlot = new Map<number, Subscription | undefined>();
    return (slot) => {
      if (bySlot.has(slot)) return bySlot.get(slot);
      const sub = this.core.ledger.find(groupName, topicName, slot);
      bySlot.set(slot, sub);
      return sub;
    };
  }

  /** Ack entries of a broadcasting group, each with the consumer id of its subscription. */
  private withConsumerIds<E extends { sub: string }>(
    entries: readonly E[],
    subs: Map<Subscription, unknown>,
  ): (E & { consumerId?: string })[] {
    const consumerIds = new Map<string, string | undefined>();
    for (const sub of subs.keys()) {
      consumerIds.set(sub.key, this.core.ledger.consumerIdOfSlot(sub.groupKey, sub.consumerSlot));
    }
    return entries.map((entry) => {
      const consumerId = consumerIds.get(entry.sub);
      return consumerId === undefined ? entry : { ...entry, consumerId };
    });
  }

  /** Whether a queue acks are about to make room on is at its in-flight cap: receives parked
   *  meanwhile found nothing there to take. */
  private atCap(byQueue: ReadonlyMap<Subscription, ReadonlyMap<number, Completion>>): boolean {
    const cap = this.core.limits.maxInflightPerQueue;
    for (const [sub, queues] of byQueue) {
      for (const queueId of queues.keys()) {
        if ((sub.cursors.get(queueId)?.inflightCount ?? 0) >= cap) return true;
      }
    }
    return false;
  }

  /** The receipts of handles, each tag checked under the reset epoch of the cursor it names. */
  private decodeReceipts(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    handles: readonly string[],
    subscriptionOf: (consumerSlot: number) => Subscription | undefined,
  ): (Receipt | null)[] {
    return this.core.receipts.decodeMany(
      receiptScope(topic, group),
      handles,
      (queueId, consumerSlot) =>
        subscriptionOf(consumerSlot)?.cursors.get(queueId)?.receiptEpoch ?? 0,
    );
  }

  private findDelivery(
    receipt: Receipt | null,
    subscriptionOf: (consumerSlot: number) => Subscription | undefined,
  ): { sub: Subscription; receipt: Receipt } | 'InvalidReceiptHandle' | 'ReceiptHandleExpired' {
    if (receipt === null || receipt.brokerId !== this.core.brokerId) return 'InvalidReceiptHandle';
    const sub = subscriptionOf(receipt.consumerSlot);
    const cursor = sub?.cursors.get(receipt.queueId);
    if (sub === undefined || cursor === undefined) return 'ReceiptHandleExpired';
    if (
      !cursor.isCurrentReceipt(receipt.queueOffset, receipt.attempt, receipt.epoch) ||
      cursor.isHeld(receipt.queueOffset)
    ) {
      return 'ReceiptHandleExpired';
    }
    return { sub, receipt };
  }

  private async subscriptionFor(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    consumerId: string | undefined,
  ): Promise<Subscription> {
    let slot = 0;
    if (group.deliveryMode === 'BROADCASTING') {
      if (consumerId === undefined)
        throw new WharfError('InvalidArgument', 'a BROADCASTING group needs consumerId');
      const known = this.core.ledger.slotOf(groupKey(group), consumerId);
      if (typeof known === 'number') slot = known;
      else {
        await this.core.record([known]);
        slot = (known as LedgerEntry & { op: 'slot' }).slot;
        this.core.dropped.check(topic, group); // dropped while the slot was journaled
      }
    }
    return this.core.ledger.subscription(groupKey(group), storeTopic(topic), slot);
  }
}

/** Resolves when the first of `promises` settles or after `ms`, whichever is first; the timer
 *  is cleared either way (a waiting receive loops often: no timer may outlive its turn). */
async function firstOf(promises: readonly Promise<void>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  try {
    await Promise.race([...promises, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The in-flight entry of a delivery found by its receipt handle. */
function inflightOf({
  sub,
  receipt,
}: {
  sub: Subscription;
  receipt: Receipt;
}): Inflight | undefined {
  return sub.cursors.get(receipt.queueId)?.inflight.get(receipt.queueOffset);
}
