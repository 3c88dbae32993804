// Looking messages up: by id (with its state in each group reading the topic), by key, by store
// time (paged across queues in time order), and a message's trace.
import type { MessagePage, TimeQuery } from '../cluster/index.js';
import type {
  GroupMessageState,
  MessageView,
  TopicDescriptor,
  TraceEvent,
} from '../model/index.js';
import { WharfError } from '../errors.js';
import type { QueueEntryRef, StoredMessage } from '../store/index.js';
import type { BrokerCore } from './broker-core.js';
import type { Subscription } from './consumer-ledger.js';
import { badField, intOf, objectOf, parseJsonObject, versionOf } from './json-fields.js';
import { deadLetteredBy, messageView } from './message-view.js';
import { tracePosition } from './trace-log.js';
import { halfTracePosition } from './transactions.js';
import {
  committedKey,
  deadLetterKey,
  deadLetterTopic,
  halfTopic,
  RESEND_QUEUE_ID,
  resendTopic,
  resentKey,
  isSystemName,
  messageScope,
  storeTopic,
  SystemProperty,
  targetOfHalfTopic,
} from './names.js';
import { schedulePosition, ScheduleProperty } from './schedule-records.js';
import { scheduledView, type Scheduler, type ScheduledLookup } from './scheduler.js';

interface TimeCursor {
  /** Next queue offset to read, per queue id. */
  next: Record<string, number>;
}

function groupName(groupKey: string): string {
  return groupKey.slice(groupKey.lastIndexOf('/') + 1);
}

export class Queries {
  constructor(
    private readonly core: BrokerCore,
    private readonly scheduler: Scheduler | null = null,
  ) {}

  async getMessage(topic: TopicDescriptor, messageId: string): Promise<MessageView> {
    const delayed = await this.scheduler?.lookup(topic, messageId);
    if (delayed !== undefined && delayed !== null)
      return this.delayedView(topic, messageId, delayed);
    const message = await this.requireMessage(topic, messageId);
    await this.core.bodyKeys.ready(topic.tenantId, topic.instanceId);
    const body = this.core.bodyKeys.open(message);
    if (body === null) throw new WharfError('MessageNotFound', 'no such message');
    const view = messageView(message, messageId, topic.topic, body);
    view.groups = await this.groupStates(topic, message, messageId);
    return view;
  }

  /** The stored message an id names in `topic` (not a delayed one's schedule record): a
   *  transactional message is its committed copy; undecided or rolled back, it is not a message
   *  of the topic (MessageNotFound). */
  async requireMessage(topic: TopicDescriptor, messageId: string): Promise<StoredMessage> {
    const found = await this.find(topic, messageId);
    const message = found.topic === storeTopic(topic) ? found : await this.committedCopy(found);
    if (message === null) throw new WharfError('MessageNotFound', 'no such message');
    return message;
  }

  /** A delayed message: its schedule record until dispatched, then its copy. */
  private async delayedView(
    topic: TopicDescriptor,
    messageId: string,
    found: ScheduledLookup,
  ): Promise<MessageView> {
    const message = found.copy ?? found.record;
    await this.core.bodyKeys.ready(topic.tenantId, topic.instanceId);
    const body = this.core.bodyKeys.open(message);
    if (body === null) throw new WharfError('MessageNotFound', 'no such message');
    const view = messageView(message, messageId, topic.topic, body);
    if (found.copy === undefined) return scheduledView(view, found);
    view.deliverAt = found.deliverAtMs;
    view.scheduleState = found.state;
    view.groups = await this.groupStates(topic, found.copy, messageId);
    return view;
  }

  async queryByKey(topic: TopicDescriptor, key: string, limit: number): Promise<MessageView[]> {
    if (isSystemName(key)) return [];
    const messages = await this.core.store.queryByKey(storeTopic(topic), key, limit);
    return await this.views(topic, messages);
  }

  async queryByTime(topic: TopicDescriptor, query: TimeQuery): Promise<MessagePage> {
    const name = storeTopic(topic);
    const cursor = query.cursor === undefined ? undefined : decodeTimeCursor(query.cursor);
    // The merge runs over consume-queue entries (positions and store times); only the page's
    // records are read: a page of `limit` messages costs `limit` records, not `limit + 1` from
    // every queue (64 queues of 4 MiB bodies would be 25 GiB for one request).
    const heads: {
      queueId: number;
      entries: QueueEntryRef[];
      next: number;
      exhausted: boolean;
    }[] = [];
    for (let queueId = 0; queueId < topic.queueCount; queueId++) {
      const from =
        cursor?.next[queueId] ??
        (await this.core.store.queueOffsetByTime(name, queueId, query.fromMs));
      const result = await this.core.store.queueEntries(name, queueId, from, query.limit + 1);
      const inRange = result.entries.filter(
        (e) => e.storeTimestampMs >= query.fromMs && e.storeTimestampMs <= query.toMs,
      );
      const exhausted =
        inRange.length < result.entries.length || result.nextQueueOffset >= result.maxQueueOffset;
      heads.push({ queueId, entries: inRange, next: result.startQueueOffset, exhausted });
    }
    // merge by (store time, queue, offset) and take the page
    const chosen: (QueueEntryRef & { queueId: number })[] = [];
    const taken = new Map<number, number>();
    const all = heads.flatMap((head) => head.entries.map((e) => ({ ...e, queueId: head.queueId })));
    all.sort(
      (a, b) =>
        a.storeTimestampMs - b.storeTimestampMs ||
        a.queueId - b.queueId ||
        a.queueOffset - b.queueOffset,
    );
    for (const entry of all) {
      if (chosen.length >= query.limit) break;
      chosen.push(entry);
      taken.set(entry.queueId, entry.queueOffset + 1);
    }
    const next: Record<string, number> = {};
    let more = false;
    for (const head of heads) {
      const position = taken.get(head.queueId) ?? head.next;
      next[head.queueId] = position;
      const left = head.entries.some((e) => e.queueOffset >= position);
      if (left || !head.exhausted) more = true;
    }
    // a record retention deleted since its entry was read is left out, and so is one that is
    // not the entry's (a damaged consume queue) or fails its check (logged by the store's reads)
    const records = await this.core.store
      .readMessages(chosen.map((e) => e.logOffset))
      .catch(async (error: unknown) => {
        if (!(error instanceof WharfError) || error.code !== 'CorruptRecord') throw error;
        return Promise.all(
          chosen.map((e) => this.core.store.readMessage(e.logOffset).catch(() => null)),
        );
      });
    const page = records.filter(
      (m, i): m is StoredMessage =>
        m !== null &&
        m.topic === name &&
        m.queueId === chosen[i].queueId &&
        m.queueOffset === chosen[i].queueOffset,
    );
    const views = await this.views(topic, page);
    return more && chosen.length > 0
      ? { messages: views, nextCursor: encodeTimeCursor({ next }) }
      : { messages: views };
  }

  async trace(topic: TopicDescriptor, messageId: string): Promise<TraceEvent[]> {
    const delayed = await this.scheduler?.lookup(topic, messageId);
    if (delayed !== undefined && delayed !== null) return this.delayedTrace(topic, delayed);
    const message = await this.find(topic, messageId);
    const copy = message.topic === storeTopic(topic) ? null : await this.committedCopy(message);
    const published: TraceEvent = {
      type: 'PUBLISHED',
      time: message.storeTimestampMs,
      queueId: message.queueId,
    };
    const trace = this.core.traceLog;
    if (trace === null) return [published];
    await trace.flush(); // events of the last few milliseconds included
    const positions =
      message.topic === storeTopic(topic)
        ? [tracePosition(topic.topic, message.queueId, message.queueOffset)]
        : // a half message: its decision events, then its committed copy's deliveries
          [
            halfTracePosition(topic.topic, message.queueId, message.queueOffset),
            ...(copy === null ? [] : [tracePosition(topic.topic, copy.queueId, copy.queueOffset)]),
          ];
    const events = await trace.events(
      topic.tenantId,
      topic.instanceId,
      positions,
      message.logOffset,
    );
    return [published, ...events];
  }

  /** PUBLISHED, SCHEDULED and CANCELLED under the schedule record, then the copy's events. */
  private async delayedTrace(
    topic: TopicDescriptor,
    found: ScheduledLookup,
  ): Promise<TraceEvent[]> {
    const published: TraceEvent = {
      type: 'PUBLISHED',
      time: found.record.storeTimestampMs,
      queueId: Number(found.record.properties[ScheduleProperty.targetQueueId]),
    };
    const trace = this.core.traceLog;
    if (trace === null) return [published];
    await trace.flush();
    const copy = found.copy;
    const events = await trace.events(
      topic.tenantId,
      topic.instanceId,
      [
        schedulePosition(topic.topic, found.record.logOffset),
        ...(copy === undefined ? [] : [tracePosition(topic.topic, copy.queueId, copy.queueOffset)]),
      ],
      found.record.logOffset,
    );
    return [published, ...events];
  }

  private async find(topic: TopicDescriptor, messageId: string): Promise<StoredMessage> {
    const position = this.core.ids.decode(messageScope(topic), messageId);
    const message =
      position === null || position.brokerId !== this.core.brokerId
        ? null
        : await this.core.store.readMessage(position.logOffset);
    if (
      message === null ||
      (message.topic !== storeTopic(topic) && message.topic !== halfTopic(topic)) ||
      // a message of a topic deleted since (and maybe created again under its name): not this
      // topic's (by the log position of the deletion, not by clocks: createdAt is a gateway's)
      this.core.store.deletedAfter(message.topic, message.logOffset)
    )
      throw new WharfError('MessageNotFound', 'no such message');
    return message;
  }

  /** The committed copy of a half message in its topic, or null (undecided, rolled back). */
  private async committedCopy(half: StoredMessage): Promise<StoredMessage | null> {
    const target = targetOfHalfTopic(half.topic) as string;
    const [copy] = await this.core.store.queryByKey(target, committedKey(half.logOffset), 1);
    return copy ?? null;
  }

  /** Views of the records whose bodies open; a sealed one whose key is gone is left out. */
  private async views(topic: TopicDescriptor, stored: StoredMessage[]): Promise<MessageView[]> {
    await this.core.bodyKeys.ready(topic.tenantId, topic.instanceId);
    const bodies = stored.map((m) => this.core.bodyKeys.open(m));
    const messages = stored.filter((_, i) => bodies[i] !== null);
    const opened = bodies.filter((b): b is Buffer => b !== null);
    const ids = this.core.ids.encode(
      messageScope(topic),
      messages.map((m) => ({ brokerId: this.core.brokerId, logOffset: m.logOffset })),
    );
    // a committed transactional message shows the id its producer was given
    return messages.map((message, i) =>
      messageView(
        message,
        message.properties[SystemProperty.messageId] ?? ids[i],
        topic.topic,
        opened[i],
      ),
    );
  }

  private async groupStates(
    topic: TopicDescriptor,
    message: StoredMessage,
    messageId: string,
  ): Promise<NonNullable<MessageView['groups']>> {
    const states: NonNullable<MessageView['groups']> = [];
    for (const sub of this.core.ledger.subscriptionsOf(storeTopic(topic))) {
      if (this.core.ledger.isBroadcastingBase(sub)) continue; // no consumer's
      const cursor = sub.cursors.get(message.queueId);
      const group = groupName(sub.groupKey);
      const consumerId = this.core.ledger.consumerIdOfSlot(sub.groupKey, sub.consumerSlot);
      let state: GroupMessageState = 'PENDING';
      let deliveryAttempt = 0;
      const entry = cursor?.inflight.get(message.queueOffset);
      if (entry !== undefined) {
        state = 'INFLIGHT';
        deliveryAttempt = entry.attempt;
      } else if (cursor !== undefined && cursor.isDone(message.queueOffset)) {
        ({ state, deliveryAttempt } = await this.afterDone(topic, sub, message, messageId));
      }
      states.push({
        group,
        state,
        deliveryAttempt,
        ...(consumerId !== undefined ? { consumerId } : {}),
      });
    }
    return states;
  }

  /** The state in `sub`'s group of a message its cursor is done with: acked (or passed over by
   *  the group's tag filter), or dead-lettered (its last dead letter) — and once that was re-sent,
   *  the state of the copy received since. */
  private async afterDone(
    topic: TopicDescriptor,
    sub: Subscription,
    message: StoredMessage,
    messageId: string,
  ): Promise<{ state: GroupMessageState; deliveryAttempt: number }> {
    const [tenantId = '', instanceId = '', group = ''] = sub.groupKey.split('/');
    const owner = { tenantId, instanceId, group };
    const dead = await this.core.store.queryByKey(
      deadLetterTopic(owner),
      deadLetterKey(messageId),
      MAX_DEAD_LETTERINGS,
    );
    const last = dead.reduce<StoredMessage | undefined>(
      (latest, m) => (latest === undefined || m.queueOffset > latest.queueOffset ? m : latest),
      undefined,
    );
    if (last === undefined) {
      // not among the tags the group's receives take (as its last receive asked: unknown after
      // a restart until one): passed over, not acked
      const tags = sub.lastTags;
      const filtered = tags !== undefined && tags !== null && !tags.has(message.tag);
      return { state: filtered ? 'FILTERED' : 'ACKED', deliveryAttempt: 0 };
    }
    if (!this.core.ledger.deadLetterDone(sub.groupKey).has(last.queueOffset)) {
      // BROADCASTING: the group's dead letter names the consumers whose deliveries it ended; a
      // consumer not named acked the message (one from before they were named: as named)
      const by = sub.consumerSlot === 0 ? [] : deadLetteredBy(last);
      return by.length > 0 && !by.includes(sub.consumerSlot)
        ? { state: 'ACKED', deliveryAttempt: 0 }
        : { state: 'DEAD_LETTERED', deliveryAttempt: last.attempt };
    }
    // re-sent: the copy in the group's re-send queue for the topic
    const [copy] = await this.core.store.queryByKey(
      resendTopic(owner, topic.topic),
      resentKey(last.logOffset),
      1,
    );
    const resent = sub.cursors.get(RESEND_QUEUE_ID);
    const entry = copy === undefined ? undefined : resent?.inflight.get(copy.queueOffset);
    if (entry !== undefined) return { state: 'INFLIGHT', deliveryAttempt: entry.attempt };
    if (copy !== undefined && resent?.isDone(copy.queueOffset) === true)
      return { state: 'ACKED', deliveryAttempt: 0 };
    return { state: 'PENDING', deliveryAttempt: 0 };
  }
}

/** Dead letters of one message in one group looked at (each re-send and dead-lettering again
 *  adds one). */
const MAX_DEAD_LETTERINGS = 64;

// Time cursor (opaque to clients, base64url of UTF-8 JSON): {"v":1,"next":{"<queueId>":N,…}},
// the next queue offset to read per queue. A cursor without `v` (handed out before versions) is
// version 1. Anything else is InvalidArgument: the cursor comes from the client.
const TIME_CURSOR_VERSION = 1;

function encodeTimeCursor(cursor: TimeCursor): string {
  return Buffer.from(JSON.stringify({ v: TIME_CURSOR_VERSION, next: cursor.next })).toString(
    'base64url',
  );
}

function decodeTimeCursor(text: string): TimeCursor {
  try {
    const o = parseJsonObject(Buffer.from(text, 'base64url').toString(), 'cursor');
    versionOf(o, 'cursor', TIME_CURSOR_VERSION);
    const next: Record<string, number> = {};
    for (const [queueId, offset] of Object.entries(objectOf(o.next, 'cursor', 'next'))) {
      if (!/^(0|[1-9][0-9]{0,4})$/.test(queueId)) throw badField('cursor', 'next', 'by queue id');
      next[queueId] = intOf(offset, 'cursor', `next.${queueId}`);
    }
    return { next };
  } catch (error) {
    // the answer says no more than before; the cause tells what was wrong
    throw new WharfError('InvalidArgument', 'invalid cursor', { cause: error });
  }
}
