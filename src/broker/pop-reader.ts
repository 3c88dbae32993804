// One POP pass over a subscription's queues (what a receive does each time it looks): claims the
// queues it reads so a concurrent receive of the same subscription skips them, takes due
// redeliveries (moving those out of attempts to the dead-letter queue), reads new messages up to
// the budget, then hands out only what still holds after the reads' awaits (acks, resets and
// drops that landed meanwhile win) and applies the deliveries to the ledger before answering.
import type {
  GroupDescriptor,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
} from '../model/index.js';
import type { ReadQueueResult, StoredMessage, TagFilter } from '../store/index.js';
import type { BrokerCore } from './broker-core.js';
import type { DeliveryTuple, LedgerEntry, Subscription } from './consumer-ledger.js';
import type { DeadLetters } from './dead-letters.js';
import { resetName } from './group-resets.js';
import { receivedMessage } from './message-view.js';
import {
  messageScope,
  receiptScope,
  RESEND_QUEUE_ID,
  resendTopic,
  subscriptionQueue,
  SystemProperty,
} from './names.js';
import type { QueueCursor } from './queue-cursor.js';
import { retryBackoffMs } from './retry-policy.js';

interface Pick {
  queueId: number;
  cursor: QueueCursor;
  /** Store topic the queue lives in (the topic, or the group's re-send topic). */
  topic: string;
  messages: StoredMessage[];
  /** Each message's plaintext body (null: its key is gone), opened before delivery. */
  bodies: (Buffer | null)[];
  /** Attempt of each message's new delivery. */
  attempts: number[];
  /** For a redelivery, the attempt it replaces (checked again before it is handed out). */
  replaces: (number | undefined)[];
  firstDeliveries: number[];
  /** In-flight offsets whose message retention deleted meanwhile: done. */
  gone: number[];
  /** How many of `gone` deliver() completed. */
  completed: number;
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
  /** Put in flight by replay over a delivery the journal never got (attempt 0, never handed
   *  out): never passed through a read. A delivery given back unseen is at attempt 0 too, but
   *  it was read (it has a first delivery time). */
  unread: boolean[];
}

export interface PopResult {
  messages: ReceivedMessage[];
  /** A read moved past entries without delivering any (a tag filter skipped them), or in-flight
   *  ones were completed undelivered. */
  progressed: boolean;
  /** The request's byte budget left messages behind (another receive may take them now). */
  capped: boolean;
  /** New messages were left unread because the tenant is at its in-flight bound on this broker
   *  (tenant-inflight.ts). */
  tenantAtBound: boolean;
}

export class PopReader {
  constructor(
    private readonly core: BrokerCore,
    private readonly deadLetters: DeadLetters,
  ) {}

  /** Queues this subscription reads: the topic's, plus its re-send queue once it has messages. */
  private queueIds(topic: TopicDescriptor, group: GroupDescriptor): number[] {
    const ids = Array.from({ length: topic.queueCount }, (_, i) => i);
    if (this.core.store.queueOffsets(resendTopic(group, topic.topic), 0).maxQueueOffset > 0)
      ids.push(RESEND_QUEUE_ID);
    return ids;
  }

  /** Cursors for queues read for the first time start at the group's creation time (API.md).
   *  A broadcasting consumer seen for the first time starts where the group was last reset to
   *  (its base, slot 0), and past the re-sent dead letters made before it came: it reads their
   *  originals in the topic's queues. */
  private async ensureCursors(
    sub: Subscription,
    topic: TopicDescriptor,
    group: GroupDescriptor,
    queueIds: number[],
  ): Promise<void> {
    const missing = queueIds.filter((queueId) => !sub.cursors.has(queueId));
    if (missing.length === 0) return;
    const joining = group.deliveryMode === 'BROADCASTING' && sub.cursors.size === 0;
    const look = (): Promise<LedgerEntry[]> => {
      const base = joining ? this.core.ledger.find(sub.groupKey, sub.topic, 0) : undefined;
      return Promise.all(
        missing.map(async (queueId): Promise<LedgerEntry> => {
          const [name, storeQueue] = subscriptionQueue(topic, group, queueId);
          const offset =
            joining && queueId === RESEND_QUEUE_ID
              ? this.core.store.queueOffsets(name, storeQueue).maxQueueOffset
              : (base?.cursors.get(queueId)?.ackOffset ??
                (await this.core.store.queueOffsetByTime(name, storeQueue, group.createdAt)));
          return { op: 'start', sub: sub.key, queue: queueId, offset };
        }),
      );
    };
    let entries: LedgerEntry[];
    if (!joining) entries = await look();
    else {
      // a reset of the group under way, or begun while this looked, moves the base: look again
      // once it is made (group-resets.ts)
      const resets = resetName(sub.groupKey, sub.topic);
      for (;;) {
        const before = this.core.resets.state(resets);
        if (before.under !== undefined) {
          await before.under;
          continue;
        }
        entries = await look();
        if (this.core.resets.state(resets).began === before.began) break;
      }
    }
    if (!this.core.ledger.isLive(sub)) return; // dropped while looking: record nothing for it
    await this.core.record(
      entries.filter((entry) => entry.op === 'start' && !sub.cursors.has(entry.queue)),
    );
  }

  /** One pass over the subscription's queues: due redeliveries first (dead-lettering those out
   *  of attempts), then new messages, up to the request's budget; applied and answered. */
  async popOnce(
    sub: Subscription,
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    filter: TagFilter | undefined,
  ): Promise<PopResult> {
    const queueIds = this.queueIds(topic, group);
    await this.ensureCursors(sub, topic, group, queueIds);
    // dropped while its cursors were being placed (a topic, group or instance drop): it has none
    if (!this.core.ledger.isLive(sub)) {
      return { messages: [], progressed: false, capped: false, tenantAtBound: false };
    }
    const fifo = topic.messageType === 'FIFO';
    const now = Date.now();
    let budget = request.maxMessages;
    // room under the tenant's in-flight bound on this broker, reserved before each read (so the
    // tenant's receives on other subscriptions cannot take it too) and given back at the end,
    // once the deliveries are in the ledger
    const bound = this.core.tenantInflight;
    let reserved = 0;
    let handedOut = 0;
    let tenantAtBound = false;
    const reserve = (wanted: number): number => {
      const granted = bound.reserve(topic.tenantId, wanted);
      reserved += granted;
      if (granted < wanted) tenantAtBound = true;
      return granted;
    };
    const giveBack = (unused: number): void => {
      bound.release(topic.tenantId, unused, 0);
      reserved -= unused;
    };
    // bodies as stored (a sealed body is longer than the one answered): at least one message
    let bytesLeft = request.maxBodyBytes ?? Number.POSITIVE_INFINITY;
    let capped = false;
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
        // offsets a lost delivery entry handed out come in flight within the budget and the
        // in-flight limit, as new reads do: a replay may owe millions
        let room = Math.min(budget, this.core.limits.maxInflightPerQueue - cursor.inflightCount);
        // in FIFO order an owed offset below everything in flight goes next, whatever the limits
        // (the queue's cap, the tenant's bound): kept out, nothing above it would come due again
        const first = fifo && cursor.owedCount > 0 && cursor.owedBelowInflight();
        if (first && room <= 0) room = budget;
        if (cursor.owedCount > 0 && room > 0) {
          const wanted = Math.min(room, cursor.owedCount);
          const granted = reserve(wanted);
          const admit = first ? wanted : granted;
          if (admit > 0 && claim(queueId)) handedOut += cursor.admitOwed(admit);
          else giveBack(granted);
        }
        if (cursor.earliestDueMs() > now || !claim(queueId)) continue;
        const due = fifo ? cursor.dueInOrder(now, budget) : cursor.takeDue(now, budget);
        const item: Redelivery = {
          queueId,
          cursor,
          offsets: [],
          attempts: [],
          firstDeliveries: [],
          unread: [],
        };
        for (const offset of due) {
          const entry = cursor.inflight.get(offset);
          if (entry === undefined) continue;
          if (entry.attempt >= group.maxDeliveryAttempts) {
            this.deadLetters.move(topic, group, sub, queueId, offset);
            if (fifo) break;
            continue;
          }
          item.offsets.push(offset);
          item.attempts.push(entry.attempt);
          item.firstDeliveries.push(entry.attempt === 0 ? now : entry.firstDeliveryMs);
          item.unread.push(entry.attempt === 0 && entry.firstDeliveryMs === 0);
        }
        budget -= item.offsets.length;
        if (item.offsets.length > 0) redeliver.push(item);
      }
      await Promise.all(
        redeliver.map((item) => this.readRedeliveries(topic, group, item, filter, picks)),
      );
      // messages this answer holds so far (its first may pass the byte budget)
      let inAnswer = 0;
      if (bytesLeft !== Number.POSITIVE_INFINITY) {
        const kept = keepWithin(picks.values(), bytesLeft);
        bytesLeft -= kept.bytes;
        if (kept.capped) {
          capped = true;
          budget = 0;
        }
      }
      for (const pick of picks.values()) inAnswer += pick.messages.length;

      // 2. new messages, queue after queue: with a backlog one read fills the budget
      for (const queueId of order) {
        if (budget <= 0 || bytesLeft <= 0) break;
        const cursor = sub.cursors.get(queueId) as QueueCursor;
        if (fifo && (cursor.inflightCount > 0 || cursor.owedCount > 0)) continue;
        const room = Math.min(budget, this.core.limits.maxInflightPerQueue - cursor.inflightCount);
        if (room <= 0) continue;
        const [name, storeQueue] = subscriptionQueue(topic, group, queueId);
        const pull = picks.get(queueId)?.pullTo ?? cursor.pullOffset;
        const end = this.core.store.queueOffsets(name, storeQueue).maxQueueOffset;
        if (pull >= end) continue;
        // no more than the queue holds: a reservation holds room the tenant's other receives need
        const granted = reserve(Math.min(room, end - pull));
        if (granted === 0) continue;
        if (!claim(queueId)) {
          giveBack(granted);
          continue;
        }
        const read = await this.readNew(topic, group, sub, queueId, granted, filter, picks, {
          maxBytes: bytesLeft,
          // the answer's first message may be larger than the whole budget
          firstOfAnswer: inAnswer === 0,
        });
        handedOut += read.count;
        inAnswer += read.count;
        budget -= read.count;
        bytesLeft -= read.bytes;
        capped ||= read.capped;
      }

      if (picks.size === 0) return { messages: [], progressed: false, capped, tenantAtBound };
      const picked = [...picks.values()];
      const progressed = picked.some((pick) => pick.pullTo > pick.startPull);
      // bodies the opened-body cache does not hold are opened in one batch, off the event loop
      // when the broker has seal threads; deliver() checks again what this await may have staled
      const bodies = await this.core.bodyKeys.openAll(picked.flatMap((pick) => pick.messages));
      let next = 0;
      for (const pick of picked) pick.bodies = pick.messages.map(() => bodies[next++]);
      const messages = this.deliver(sub, topic, group, request, picked, now, releaseClaims);
      // in-flight offsets completed undelivered (owed ones the tag filter or a fence passes over,
      // retention's) are progress too: read on rather than park while more may be owed
      const completed = picked.some((pick) => pick.completed > 0);
      return {
        messages,
        progressed: (progressed || completed) && messages.length === 0,
        capped,
        tenantAtBound,
      };
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
      bound.release(topic.tenantId, reserved, handedOut);
    }
  }

  private async readRedeliveries(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    item: Redelivery,
    filter: TagFilter | undefined,
    picks: Map<number, Pick>,
  ): Promise<void> {
    const [name, storeQueue] = subscriptionQueue(topic, group, item.queueId);
    const pick = this.pickFor(picks, item.queueId, item.cursor, name);
    const withdrawn = this.core.journal.withdrawals.of(name, storeQueue);
    const fenced = fencedCopies(this.core);
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
      // a copy a fence withdrew is done for the group, even one delivered before (given back
      // unseen, or its invisibility over): its failed-over twin is the message delivered.
      // Never passed through a read (Redelivery.unread): what the tag filter leaves out is done
      // for the group too, not delivered
      if (
        withdrawn?.has(offset) === true ||
        fenced?.(message) === true ||
        (item.unread[i] &&
          filter !== undefined &&
          filter.tags.size > 0 &&
          !filter.tags.has(message.tag))
      ) {
        pick.gone.push(offset);
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
    bytes: { maxBytes: number; firstOfAnswer: boolean },
  ): Promise<{ count: number; bytes: number; capped: boolean }> {
    const cursor = sub.cursors.get(queueId) as QueueCursor;
    const [name, storeQueue] = subscriptionQueue(topic, group, queueId);
    const pick = this.pickFor(picks, queueId, cursor, name);
    if (!bytes.firstOfAnswer && bytes.maxBytes !== Number.POSITIVE_INFINITY) {
      // the store reads a queue's first record whatever its size: one that cannot fit what is
      // left of the answer (a record is larger than its body) is not read only to be dropped
      const [next] = (await this.core.store.queueEntries(name, storeQueue, pick.pullTo, 1)).entries;
      if (next !== undefined && next.size > bytes.maxBytes) {
        return { count: 0, bytes: 0, capped: true };
      }
    }
    const options = {
      maxMessages: max,
      ...(filter !== undefined ? { filter } : {}),
      ...(bytes.maxBytes === Number.POSITIVE_INFINITY ? {} : { maxBytes: bytes.maxBytes }),
    };
    let result: ReadQueueResult = await this.core.store.readQueue(
      name,
      storeQueue,
      pick.pullTo,
      options,
    );
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
      result = await this.core.store.readQueue(name, storeQueue, pick.pullTo, options);
    }
    if (result.status === 'OFFSET_OVERFLOW') {
      // The queue ends below the cursor: deleted behind the ledger (the broker's drops let go of
      // the cursors first, and isLive fails for a read they overtook). Journaled like any move,
      // or a crash would replay the cursor past the end again, over what is stored there since
      // and what was delivered from the clamped position.
      if (this.core.ledger.isLive(sub) && cursor.pullOffset > result.maxQueueOffset) {
        const clamp: LedgerEntry = {
          op: 'clamp',
          sub: sub.key,
          queue: queueId,
          offset: result.maxQueueOffset,
        };
        const journaled = this.core.record([clamp]).catch((error: unknown) => {
          // refused (a full disk, a full append queue): a snapshot holds it instead
          this.core.journal.saveUnjournaledClamp();
          throw error;
        });
        this.core.track(journaled, 'journaling a cursor clamp');
      }
      pick.pullTo = cursor.pullOffset;
      return { count: 0, bytes: 0, capped: false };
    }
    const first = result.messages[0];
    if (first !== undefined && !bytes.firstOfAnswer && first.body.length > bytes.maxBytes) {
      // the store's one message past the budget: left for the next receive, unread
      pick.pullTo = Math.max(pick.pullTo, first.queueOffset);
      return { count: 0, bytes: 0, capped: true };
    }
    const now = Date.now();
    // withdrawn messages (publish fences) are passed over like messages the tag filter leaves out
    const withdrawn = this.core.journal.withdrawals.of(name, storeQueue);
    const fenced = fencedCopies(this.core);
    for (const message of result.messages) {
      if (withdrawn?.has(message.queueOffset) === true || fenced?.(message) === true) continue;
      pick.messages.push(message);
      pick.attempts.push(1);
      pick.firstDeliveries.push(now);
    }
    pick.pullTo = Math.max(pick.pullTo, result.nextQueueOffset);
    let read = 0;
    for (const message of result.messages) read += message.body.length;
    return {
      count: result.messages.length,
      bytes: read,
      // stopped short of both limits and of the queue's end: the byte budget stopped it
      capped:
        options.maxBytes !== undefined &&
        result.messages.length < max &&
        result.nextQueueOffset < result.maxQueueOffset,
    };
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
        bodies: [],
        attempts: [],
        replaces: [],
        firstDeliveries: [],
        gone: [],
        completed: 0,
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
    const live = this.core.ledger.isLive(sub);
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
            : !cursor.isCurrent(offset, replaces) ||
              cursor.isHeld(offset) ||
              // its consumer extended it while it was read: invisible again, not due
              (cursor.inflight.get(offset)?.redeliverAtMs ?? now) > now
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
      pick.completed = gone.length;
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
        attempt: pick.cursor.receiptAttempt(pick.attempts[index]),
        consumerSlot: sub.consumerSlot,
        epoch: pick.cursor.receiptEpoch,
      })),
    );
    let shredded = 0;
    const opened = delivered.map(({ pick, index }, i): ReceivedMessage | null => {
      const message = pick.messages[index];
      const body = pick.bodies[index];
      if (body === null) {
        shredded++; // its instance's key is gone: never handed out (fails closed)
        return null;
      }
      return receivedMessage(
        message,
        body,
        message.properties[SystemProperty.messageId] ?? ownIds[i],
        handles[i],
        pick.firstDeliveries[index],
        pick.attempts[index],
        nextVisibleMs,
      );
    });
    const answers = opened.filter((answer): answer is ReceivedMessage => answer !== null);
    if (shredded > 0)
      this.core.logger.warn(
        { topic: topic.topic, group: group.group, messages: shredded },
        'sealed messages whose data key is gone were not handed out',
      );
    const trace = this.core.traceLog;
    if (trace !== null) {
      const consumerId = this.core.ledger.consumerIdOfSlot(sub.groupKey, sub.consumerSlot);
      trace.delivered(topic, group.group, consumerId, answers, now);
    }
    return answers;
  }
}

/**
 * Redeliveries read for an answer, kept to `maxBytes` of bodies (at least one message): the
 * rest go back to their due heap unseen, no attempt counted.
 */
function keepWithin(picks: Iterable<Pick>, maxBytes: number): { bytes: number; capped: boolean } {
  let bytes = 0;
  let kept = 0;
  let capped = false;
  for (const pick of picks) {
    let keep = 0;
    while (keep < pick.messages.length) {
      const size = pick.messages[keep].body.length;
      if (kept > 0 && bytes + size > maxBytes) break;
      bytes += size;
      kept++;
      keep++;
    }
    if (keep === pick.messages.length) continue;
    capped = true;
    const { cursor } = pick;
    for (const message of pick.messages.slice(keep)) {
      const entry = cursor.inflight.get(message.queueOffset);
      if (entry !== undefined) {
        cursor.changeVisibility(message.queueOffset, entry.nextVisibleMs, entry.redeliverAtMs);
      }
    }
    pick.messages.length = keep;
    pick.attempts.length = keep;
    pick.replaces.length = keep;
    pick.firstDeliveries.length = keep;
  }
  return { bytes, capped };
}

/**
 * On a cluster broker with fences applied lately, whether a message is the copy of a fenced call
 * (publish-fences.ts): passed over as a withdrawn one is. Its withdrawal is journaled when the
 * fence finds it, which may come after the copy is readable: a call the broker stored just after
 * a stall, behind the scan of its fence. Undefined (nothing to look at) nearly always.
 */
function fencedCopies(core: BrokerCore): ((message: StoredMessage) => boolean) | undefined {
  const fences = core.fencedCalls;
  if (fences === null || !fences.active()) return undefined;
  return (message) => {
    const requestId = message.properties[SystemProperty.requestId];
    return requestId !== undefined && fences.fenced(requestId);
  };
}
