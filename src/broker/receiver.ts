// Receive, ack and change visibility (POP consumption): hands out messages of a topic's queues
// to a group, invisible until a deadline, with a receipt handle each; redelivers what was not
// acked after invisibility plus the group's back-off; moves a message to the group's dead-letter
// queue once it has used its delivery attempts. Every state change is applied to the consumer
// ledger and journaled before the call answers.
import type {
  AckResult,
  GroupDescriptor,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
  VisibilityResult,
} from '../cluster/broker-client.js';
import { WharfError } from '../errors.js';
import type { Receipt } from '../protocol/index.js';
import type { ReadQueueResult, StoredMessage, TagFilter } from '../store/index.js';
import { MessageFlags } from '../store/index.js';
import type { BrokerCore } from './broker-core.js';
import type { DeliveryTuple, LedgerEntry, Subscription } from './consumer-ledger.js';
import { copyProperties, origin, userFields } from './message-view.js';
import { tracePosition, type TracedEvent } from './trace-log.js';
import {
  deadLetterKey,
  deadLetterTopic,
  groupKey,
  messageScope,
  receiptScope,
  RESEND_QUEUE_ID,
  resendTopic,
  storeTopic,
  SystemProperty,
} from './names.js';
import type { QueueCursor } from './queue-cursor.js';
import { retryBackoffMs } from './retry-policy.js';
import { parseTagFilter } from './tag-filter.js';

interface Pick {
  queueId: number;
  cursor: QueueCursor;
  /** Store topic the queue lives in (the topic, or the group's re-send topic). */
  topic: string;
  messages: StoredMessage[];
  /** Attempt of each message's new delivery. */
  attempts: number[];
  /** For a redelivery, the attempt it replaces (checked again before it is handed out). */
  replaces: (number | undefined)[];
  firstDeliveries: number[];
  /** In-flight offsets whose message retention deleted meanwhile: done. */
  gone: number[];
  /** The cursor's pullOffset and epoch when the queue was claimed. */
  startPull: number;
  epoch: number;
  pullTo: number;
}

/** Due in-flight offsets of one queue to hand out again, with what they were when taken. */
interface Redelivery {
  queueId: number;
  cursor: QueueCursor;
  offsets: number[];
  attempts: number[];
  firstDeliveries: number[];
}

interface PopResult {
  messages: ReceivedMessage[];
  /** A read moved past entries without delivering any (a tag filter skipped them). */
  progressed: boolean;
}

export class Receiver {
  constructor(private readonly core: BrokerCore) {}

  async receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    this.core.rememberGroup(topic, group);
    const filter = parseTagFilter(request.tags);
    const sub = await this.subscriptionFor(topic, group, request.consumerId);
    await this.core.bodyKeys.ready(topic.tenantId, topic.instanceId); // deliver() opens bodies
    sub.lastReceiveMs = Date.now();
    const deadline = Date.now() + request.waitMs;
    const name = storeTopic(topic);
    const fifo = topic.messageType === 'FIFO';
    for (;;) {
      // an aborted receive (client gone, credential revoked) takes nothing more
      if (this.core.longPoll.closed || signal?.aborted === true) return [];
      const version = this.core.longPoll.version(name);
      const { messages, progressed } = await this.popOnce(sub, topic, group, request, filter);
      if (messages.length > 0) {
        // a full batch may have left more behind: let the next waiting receive look
        if (messages.length === request.maxMessages) this.core.longPoll.notify(name);
        return messages;
      }
      const now = Date.now();
      if (now >= deadline || this.core.longPoll.closed) return [];
      if (progressed) continue; // filtered entries were passed over: read on, do not park
      const busy = [...sub.busy.values()];
      if (busy.length > 0) {
        // another receive of this subscription is reading some queues: look again when it is done
        await Promise.race([Promise.all(busy), sleep(deadline - now)]);
        continue;
      }
      await this.core.longPoll.park(
        name,
        topic.tenantId,
        Math.min(deadline, sub.earliestDueMs(fifo)),
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
    const entries = new Map<string, LedgerEntry & { op: 'complete' }>();
    const counters = new Set<Subscription>();
    const receipts = this.core.receipts.decodeMany(receiptScope(topic, group), handles);
    for (const [i, receiptHandle] of handles.entries()) {
      const found = this.findDelivery(topic, group, receipts[i] ?? null);
      if (typeof found === 'string') {
        results.push({ receiptHandle, ok: false, code: found });
        continue;
      }
      const { sub, receipt } = found;
      const key = `${sub.key}\u0000${receipt.queueId}`;
      let entry = entries.get(key);
      if (entry === undefined) {
        entry = { op: 'complete', sub: sub.key, queue: receipt.queueId, offsets: [] };
        entries.set(key, entry);
      }
      if (entry.offsets.includes(receipt.queueOffset)) {
        results.push({ receiptHandle, ok: false, code: 'ReceiptHandleExpired' });
        continue;
      }
      entry.offsets.push(receipt.queueOffset);
      counters.add(sub);
      results.push({ receiptHandle, ok: true });
    }
    if (entries.size > 0) {
      await this.core.record([...entries.values()]);
      this.traceAcks(topic, group, [...entries.values()]);
      for (const sub of counters) {
        const acked = [...entries.values()]
          .filter((e) => e.sub === sub.key)
          .reduce((n, e) => n + e.offsets.length, 0);
        this.core.counters.subscription(sub.key).acked.add(acked);
      }
      // FIFO queues hand out their next messages once the earlier ones are acked
      if (topic.messageType === 'FIFO') this.core.longPoll.notify(storeTopic(topic));
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
    const receipt = this.core.receipts.decode(receiptScope(topic, group), receiptHandle);
    const found = this.findDelivery(topic, group, receipt);
    if (found === 'InvalidReceiptHandle')
      throw new WharfError('InvalidReceiptHandle', 'receipt handle is not valid');
    if (found === 'ReceiptHandleExpired') {
      throw new WharfError('ReceiptHandleExpired', 'the delivery of this receipt handle is over');
    }
    const nextVisibleMs = Date.now() + invisibleMs;
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
    if (invisibleMs === 0) this.core.longPoll.notify(storeTopic(topic));
    return { receiptHandle, nextVisibleTime: nextVisibleMs };
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
          this.deadLetter(topic, group, sub, queueId, offset);
        else cursor.changeVisibility(offset, entry.nextVisibleMs, entry.redeliverAtMs); // back in the heap
      }
    }
  }

  private findDelivery(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receipt: Receipt | null,
  ): { sub: Subscription; receipt: Receipt } | 'InvalidReceiptHandle' | 'ReceiptHandleExpired' {
    if (receipt === null || receipt.brokerId !== this.core.brokerId) return 'InvalidReceiptHandle';
    const sub = this.core.ledger.find(groupKey(group), storeTopic(topic), receipt.consumerSlot);
    const cursor = sub?.cursors.get(receipt.queueId);
    if (sub === undefined || cursor === undefined) return 'ReceiptHandleExpired';
    if (
      !cursor.isCurrent(receipt.queueOffset, receipt.attempt) ||
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
      }
    }
    return this.core.ledger.subscription(groupKey(group), storeTopic(topic), slot);
  }

  /** Queues this subscription reads: the topic's, plus its re-send queue once it has messages. */
  private queueIds(topic: TopicDescriptor, group: GroupDescriptor): number[] {
    const ids = Array.from({ length: topic.queueCount }, (_, i) => i);
    if (this.core.store.queueOffsets(resendTopic(group, topic.topic), 0).maxQueueOffset > 0)
      ids.push(RESEND_QUEUE_ID);
    return ids;
  }

  private queueTopic(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    queueId: number,
  ): [string, number] {
    return queueId === RESEND_QUEUE_ID
      ? [resendTopic(group, topic.topic), 0]
      : [storeTopic(topic), queueId];
  }

  /** Cursors for queues read for the first time start at the group's creation time (API.md). */
  private async ensureCursors(
    sub: Subscription,
    topic: TopicDescriptor,
    group: GroupDescriptor,
    queueIds: number[],
  ): Promise<void> {
    const missing = queueIds.filter((queueId) => !sub.cursors.has(queueId));
    if (missing.length === 0) return;
    const entries = await Promise.all(
      missing.map(async (queueId): Promise<LedgerEntry> => {
        const [name, storeQueue] = this.queueTopic(topic, group, queueId);
        const offset = await this.core.store.queueOffsetByTime(name, storeQueue, group.createdAt);
        return { op: 'start', sub: sub.key, queue: queueId, offset };
      }),
    );
    if (!this.isLive(sub)) return; // dropped while looking: record nothing for it
    await this.core.record(
      entries.filter((entry) => entry.op === 'start' && !sub.cursors.has(entry.queue)),
    );
  }

  /** Whether the subscription is still the ledger's (not dropped by dropTopic / dropGroup). */
  private isLive(sub: Subscription): boolean {
    return this.core.ledger.find(sub.groupKey, sub.topic, sub.consumerSlot) === sub;
  }

  private async popOnce(
    sub: Subscription,
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    filter: TagFilter | undefined,
  ): Promise<PopResult> {
    const queueIds = this.queueIds(topic, group);
    await this.ensureCursors(sub, topic, group, queueIds);
    const fifo = topic.messageType === 'FIFO';
    const now = Date.now();
    let budget = request.maxMessages;
    // the round starts one queue further each call, so a hot queue cannot starve the others
    const start = sub.rotation++ % queueIds.length;
    const order = queueIds.slice(start).concat(queueIds.slice(0, start));
    const picks = new Map<number, Pick>();
    const redeliver: Redelivery[] = [];
    // A queue being read by one receive is skipped by the others of the same subscription (no
    // double delivery); the claim ends as soon as the deliveries are applied to the ledger.
    const claimed: number[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const claim = (queueId: number): boolean => {
      if (claimed.includes(queueId)) return true;
      if (sub.busy.has(queueId)) return false;
      sub.busy.set(queueId, released);
      claimed.push(queueId);
      return true;
    };
    const releaseClaims = (): void => {
      for (const queueId of claimed) sub.busy.delete(queueId);
      claimed.length = 0;
      release();
    };
    try {
      // 1. redeliveries that are due; dead letters for those out of attempts
      for (const queueId of order) {
        if (budget === 0) break;
        const cursor = sub.cursors.get(queueId) as QueueCursor;
        if (cursor.earliestDueMs() > now || !claim(queueId)) continue;
        const due = fifo ? cursor.dueInOrder(now, budget) : cursor.takeDue(now, budget);
        const item: Redelivery = {
          queueId,
          cursor,
          offsets: [],
          attempts: [],
          firstDeliveries: [],
        };
        for (const offset of due) {
          const entry = cursor.inflight.get(offset);
          if (entry === undefined) continue;
          if (entry.attempt >= group.maxDeliveryAttempts) {
            this.deadLetter(topic, group, sub, queueId, offset);
            if (fifo) break;
            continue;
          }
          item.offsets.push(offset);
          item.attempts.push(entry.attempt);
          item.firstDeliveries.push(entry.attempt === 0 ? now : entry.firstDeliveryMs);
        }
        budget -= item.offsets.length;
        if (item.offsets.length > 0) redeliver.push(item);
      }
      await Promise.all(redeliver.map((item) => this.readRedeliveries(topic, group, item, picks)));

      // 2. new messages, queue after queue: with a backlog one read fills the budget
      for (const queueId of order) {
        if (budget <= 0) break;
        const cursor = sub.cursors.get(queueId) as QueueCursor;
        if (fifo && cursor.inflightCount > 0) continue;
        if (cursor.inflightCount >= this.core.limits.maxInflightPerQueue) continue;
        const [name, storeQueue] = this.queueTopic(topic, group, queueId);
        const pull = picks.get(queueId)?.pullTo ?? cursor.pullOffset;
        if (pull >= this.core.store.queueOffsets(name, storeQueue).maxQueueOffset) continue;
        if (!claim(queueId)) continue;
        budget -= await this.readNew(topic, group, sub, queueId, budget, filter, picks);
      }

      if (picks.size === 0) return { messages: [], progressed: false };
      const progressed = [...picks.values()].some((pick) => pick.pullTo > pick.startPull);
      const messages = this.deliver(
        sub,
        topic,
        group,
        request,
        [...picks.values()],
        now,
        releaseClaims,
      );
      return { messages, progressed: progressed && messages.length === 0 };
    } catch (error) {
      // nothing was handed out: due offsets taken from the heap go back into it
      for (const { cursor, offsets } of redeliver) {
        for (const offset of offsets) {
          const entry = cursor.inflight.get(offset);
          if (entry !== undefined)
            cursor.changeVisibility(offset, entry.nextVisibleMs, entry.redeliverAtMs);
        }
      }
      throw error;
    } finally {
      releaseClaims();
    }
  }

  private async readRedeliveries(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    item: Redelivery,
    picks: Map<number, Pick>,
  ): Promise<void> {
    const [name, storeQueue] = this.queueTopic(topic, group, item.queueId);
    const pick = this.pickFor(picks, item.queueId, item.cursor, name);
    const results = await Promise.all(
      item.offsets.map((offset) =>
        this.core.store.readQueue(name, storeQueue, offset, { maxMessages: 1 }),
      ),
    );
    results.forEach((result, i) => {
      const offset = item.offsets[i];
      const message = result.messages[0];
      if (message === undefined || message.queueOffset !== offset) {
        pick.gone.push(offset); // deleted by retention while in flight
        return;
      }
      pick.messages.push(message);
      pick.attempts.push(item.attempts[i] + 1);
      pick.replaces.push(item.attempts[i]);
      pick.firstDeliveries.push(item.firstDeliveries[i]);
    });
  }

  private async readNew(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    sub: Subscription,
    queueId: number,
    max: number,
    filter: TagFilter | undefined,
    picks: Map<number, Pick>,
  ): Promise<number> {
    const cursor = sub.cursors.get(queueId) as QueueCursor;
    const [name, storeQueue] = this.queueTopic(topic, group, queueId);
    const pick = this.pickFor(picks, queueId, cursor, name);
    let result: ReadQueueResult = await this.core.store.readQueue(name, storeQueue, pick.pullTo, {
      maxMessages: max,
      ...(filter !== undefined ? { filter } : {}),
    });
    if (result.status === 'OFFSET_EXPIRED') {
      this.core.logger.warn(
        {
          topic: name,
          queueId: storeQueue,
          from: pick.pullTo,
          min: result.minQueueOffset,
          group: group.group,
        },
        'messages expired by retention before this group consumed them',
      );
      pick.pullTo = result.nextQueueOffset;
      result = await this.core.store.readQueue(name, storeQueue, pick.pullTo, {
        maxMessages: max,
        ...(filter !== undefined ? { filter } : {}),
      });
    }
    if (result.status === 'OFFSET_OVERFLOW') {
      cursor.clampTo(result.maxQueueOffset);
      pick.pullTo = cursor.pullOffset;
      return 0;
    }
    const now = Date.now();
    for (const message of result.messages) {
      pick.messages.push(message);
      pick.attempts.push(1);
      pick.firstDeliveries.push(now);
    }
    pick.pullTo = Math.max(pick.pullTo, result.nextQueueOffset);
    return result.messages.length;
  }

  private pickFor(
    picks: Map<number, Pick>,
    queueId: number,
    cursor: QueueCursor,
    name: string,
  ): Pick {
    let pick = picks.get(queueId);
    if (pick === undefined) {
      pick = {
        queueId,
        cursor,
        topic: name,
        messages: [],
        attempts: [],
        replaces: [],
        firstDeliveries: [],
        gone: [],
        startPull: cursor.pullOffset,
        epoch: cursor.epoch,
        pullTo: cursor.pullOffset,
      };
      picks.set(queueId, pick);
    }
    return pick;
  }

  private deliver(
    sub: Subscription,
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    picks: Pick[],
    now: number,
    onApplied: () => void,
  ): ReceivedMessage[] {
    const invisibleMs = request.invisibleMs ?? group.invisibleSeconds * 1000;
    const nextVisibleMs = now + invisibleMs;
    const entries: LedgerEntry[] = [];
    const delivered: { pick: Pick; index: number }[] = [];
    // What was read before an await may be stale now: the subscription dropped, the cursor reset
    // or clamped (epoch), an in-flight message acked, moved or redelivered meanwhile. Only what
    // still holds is handed out.
    const live = this.core.ledger.find(sub.groupKey, sub.topic, sub.consumerSlot) === sub;
    for (const pick of live ? picks : []) {
      const cursor = sub.cursors.get(pick.queueId);
      if (cursor !== pick.cursor || cursor.epoch !== pick.epoch) continue;
      const fresh = cursor.pullOffset === pick.startPull;
      const tuples: DeliveryTuple[] = [];
      pick.messages.forEach((message, i) => {
        const replaces = pick.replaces[i];
        const offset = message.queueOffset;
        if (
          replaces === undefined
            ? !fresh
            : !cursor.isCurrent(offset, replaces) || cursor.isHeld(offset)
        ) {
          return;
        }
        const attempt = pick.attempts[i];
        // after the last attempt no back-off: the message goes to the dead-letter queue then
        const backoffMs =
          attempt >= group.maxDeliveryAttempts ? 0 : retryBackoffMs(group.retryPolicy, attempt);
        delivered.push({ pick, index: i });
        tuples.push([
          offset,
          attempt,
          pick.firstDeliveries[i],
          nextVisibleMs,
          nextVisibleMs + backoffMs,
        ]);
      });
      const pullTo = fresh ? pick.pullTo : cursor.pullOffset;
      if (tuples.length > 0 || pullTo > cursor.pullOffset) {
        entries.push({
          op: 'deliver',
          sub: sub.key,
          queue: pick.queueId,
          d: tuples,
          pull: pullTo,
          from: cursor.pullOffset,
        });
      }
      const gone = pick.gone.filter((offset) => cursor.inflight.has(offset));
      if (gone.length > 0)
        entries.push({ op: 'complete', sub: sub.key, queue: pick.queueId, offsets: gone });
    }
    // Applied to the ledger before record() returns. The answer does not wait for the journal:
    // a delivery lost in a crash only means the message is delivered again with the same attempt
    // number (at-least-once), while acks, which must not be lost, are awaited. Journal order
    // still holds: an ack can only follow the answer, so it is journaled after its delivery.
    const durable = this.core.record(entries);
    onApplied();
    this.core.track(durable, 'journaling deliveries');
    if (delivered.length === 0) return [];
    this.core.counters.subscription(sub.key).delivered.add(delivered.length);

    const scope = messageScope(topic);
    const ownIds = this.core.ids.encode(
      scope,
      delivered.map(({ pick, index }) => ({
        brokerId: this.core.brokerId,
        logOffset: pick.messages[index].logOffset,
      })),
    );
    const handles = this.core.receipts.encode(
      receiptScope(topic, group),
      delivered.map(({ pick, index }) => ({
        brokerId: this.core.brokerId,
        queueId: pick.queueId,
        queueOffset: pick.messages[index].queueOffset,
        attempt: pick.attempts[index],
        consumerSlot: sub.consumerSlot,
      })),
    );
    let shredded = 0;
    const opened = delivered.map(({ pick, index }, i): ReceivedMessage | null => {
      const message = pick.messages[index];
      const copyOf = message.properties[SystemProperty.messageId];
      const body = this.core.bodyKeys.open(message);
      if (body === null) {
        shredded++; // its instance's key is gone: never handed out (fails closed)
        return null;
      }
      const fields = userFields(message, body);
      return {
        messageId: copyOf ?? ownIds[i],
        receiptHandle: handles[i],
        ...fields,
        queueId:
          copyOf === undefined
            ? message.queueId
            : Number(message.properties[SystemProperty.originQueueId]),
        queueOffset:
          copyOf === undefined
            ? message.queueOffset
            : Number(message.properties[SystemProperty.originQueueOffset]),
        publishTime:
          copyOf === undefined
            ? message.storeTimestampMs
            : Number(message.properties[SystemProperty.originPublishTime]),
        firstDeliveryTime: pick.firstDeliveries[index],
        deliveryAttempt: pick.attempts[index],
        nextVisibleTime: nextVisibleMs,
      };
    });
    const answers = opened.filter((answer): answer is ReceivedMessage => answer !== null);
    if (shredded > 0)
      this.core.logger.warn(
        { topic: topic.topic, group: group.group, messages: shredded },
        'sealed messages whose data key is gone were not handed out',
      );
    this.traceDeliveries(topic, group, sub, answers, now);
    return answers;
  }

  private traceDeliveries(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    sub: Subscription,
    answers: readonly ReceivedMessage[],
    now: number,
  ): void {
    if (this.core.traceLog === null) return;
    const consumerId = this.core.ledger.consumerIdOfSlot(sub.groupKey, sub.consumerSlot);
    const events: TracedEvent[] = [];
    for (const answer of answers) {
      const base = {
        position: tracePosition(topic.topic, answer.queueId, answer.queueOffset),
        time: now,
        group: group.group,
        deliveryAttempt: answer.deliveryAttempt,
        ...(consumerId !== undefined ? { consumerId } : {}),
      };
      if (answer.deliveryAttempt > 1) events.push({ ...base, type: 'RETRIED' });
      events.push({ ...base, type: 'DELIVERED' });
    }
    this.core.traceLog.record(topic.tenantId, topic.instanceId, events);
  }

  /** ACKED events; a re-sent copy's original position is read from the copy (rare). */
  private traceAcks(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    acked: readonly (LedgerEntry & { op: 'complete' })[],
  ): void {
    const trace = this.core.traceLog;
    if (trace === null) return;
    const time = Date.now();
    const event = (position: string): TracedEvent => ({
      position,
      time,
      type: 'ACKED',
      group: group.group,
    });
    const events: TracedEvent[] = [];
    for (const entry of acked) {
      if (entry.queue !== RESEND_QUEUE_ID) {
        for (const offset of entry.offsets)
          events.push(event(tracePosition(topic.topic, entry.queue, offset)));
        continue;
      }
      const copies = entry.offsets.map((offset) =>
        this.core.store.readQueue(resendTopic(group, topic.topic), 0, offset, { maxMessages: 1 }),
      );
      this.core.track(
        Promise.all(copies).then((results) => {
          const positions = results.flatMap((result) =>
            result.messages.map((copy) => origin(copy)),
          );
          trace.record(
            topic.tenantId,
            topic.instanceId,
            positions.map((place) =>
              event(tracePosition(topic.topic, place.queueId, place.queueOffset)),
            ),
          );
        }),
        'tracing acks of re-sent messages',
      );
    }
    trace.record(topic.tenantId, topic.instanceId, events);
  }

  /** Copies the message to the group's dead-letter queue, then marks it done. Runs in the
   *  background; the offset is held meanwhile so it is neither redelivered nor acked. */
  private deadLetter(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    sub: Subscription,
    queueId: number,
    offset: number,
  ): void {
    const cursor = sub.cursors.get(queueId);
    if (cursor === undefined || cursor.isHeld(offset)) return;
    const entry = cursor.inflight.get(offset);
    if (entry === undefined) return;
    cursor.hold(offset);
    const task = (async () => {
      const [name, storeQueue] = this.queueTopic(topic, group, queueId);
      const result = await this.core.store.readQueue(name, storeQueue, offset, { maxMessages: 1 });
      const message = result.messages[0];
      const messageId =
        message === undefined
          ? ''
          : (message.properties[SystemProperty.messageId] ??
            this.core.ids.encodeOne(messageScope(topic), {
              brokerId: this.core.brokerId,
              logOffset: message.logOffset,
            }));
      // a copy left by a move that crashed before its ledger entry: not copied twice
      const [earlier] =
        message === undefined
          ? []
          : await this.core.store.queryByKey(deadLetterTopic(group), deadLetterKey(messageId), 1);
      const alreadyMoved =
        earlier !== undefined &&
        !this.core.ledger.deadLetterDone(groupKey(group)).has(earlier.queueOffset);
      if (message !== undefined && message.queueOffset === offset && !alreadyMoved) {
        await this.core.store.append([
          {
            topic: deadLetterTopic(group),
            queueId: 0,
            ...(message.tag !== '' ? { tag: message.tag } : {}),
            keys: [
              ...message.keys.filter((key) => key !== deadLetterKey(messageId)),
              deadLetterKey(messageId),
            ],
            properties: copyProperties(message, messageId, topic.topic),
            body: message.body, // a sealed envelope stays sealed (same instance, same key)
            bornTimestampMs: message.bornTimestampMs,
            flags: MessageFlags.RETRY | (message.flags & MessageFlags.SEALED),
            attempt: entry.attempt,
          },
        ]);
        this.core.logger.info(
          { topic: topic.topic, group: group.group, messageId, attempts: entry.attempt },
          'message moved to the dead-letter queue',
        );
        const place = origin(message);
        this.core.traceLog?.record(topic.tenantId, topic.instanceId, [
          {
            position: tracePosition(topic.topic, place.queueId, place.queueOffset),
            time: Date.now(),
            type: 'DEAD_LETTERED',
            group: group.group,
            deliveryAttempt: entry.attempt,
          },
        ]);
      }
      if (!this.isLive(sub)) return;
      await this.core.record([{ op: 'complete', sub: sub.key, queue: queueId, offsets: [offset] }]);
      if (topic.messageType === 'FIFO') this.core.longPoll.notify(storeTopic(topic));
    })().catch((error: unknown) => {
      // try again later: the offset comes due again in a few seconds
      const retryAt = Date.now() + 5000;
      cursor.changeVisibility(offset, entry.nextVisibleMs, retryAt);
      throw error;
    });
    this.core.track(task, 'dead-letter move');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}
