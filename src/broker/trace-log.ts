// Message trace: what happened to a message after it was published (delivered, acked, retried,
// dead-lettered, re-sent), kept in the store like RocketMQ's trace topic. Events are gathered
// per instance for a few milliseconds and written as one record of an internal trace topic whose
// keys name the messages, so the store's key index finds a message's events; they expire with
// the log. Keys are message positions, not ids, because an ack knows only the position its
// receipt handle names. Writing is off the answer path (a trace is diagnostics: a crash may lose
// the last few milliseconds of events) and bounded: past the bound events are dropped and counted.
// Record body (UTF-8 JSON): {"v":1,"events":[{"position":P,"time":T,"type":TYPE,"group"?:G,
// "consumerId"?:C,"deliveryAttempt"?:N,"queueId"?:N,"checkCount"?:N,"reason"?:R},…]} (the last
// two on transaction events); a bare array of events (written before
// versions existed) is version 1.
import type {
  GroupDescriptor,
  ReceivedMessage,
  TopicDescriptor,
  TraceEvent,
} from '../model/index.js';
import { WharfError } from '../errors.js';
import { TRACE_EVENT_TYPES } from '../model/index.js';
import type { MessageStore, StoredMessage } from '../store/index.js';
import { MessageFlags } from '../store/index.js';
import { arrayOf, intOf, numberOf, objectOf, oneOf, stringOf, versionOf } from './json-fields.js';
import { origin } from './message-view.js';
import { RESEND_QUEUE_ID, resendTopic, SystemProperty } from './names.js';

export const TRACE_RECORD_VERSION = 1;

/** An event and the message it is about, named by its first position (see tracePosition). */
export interface TracedEvent extends TraceEvent {
  position: string;
}

/** The key of a message's events: the user topic and its original queue position (a copy made
 *  for a dead letter or a re-send names its original). */
export function tracePosition(topic: string, queueId: number, queueOffset: number): string {
  return `${topic}:${queueId}:${queueOffset}`;
}

export interface TraceLogOptions {
  /** How long events wait to be written together; default 20 ms. */
  lingerMs?: number;
  /** Events waiting at most (over all instances); more are dropped. Default 65536. */
  maxPendingEvents?: number;
  onError?: (error: unknown) => void;
}

/** The trace topic of a tenant's instance (queue 0). */
export function traceTopic(tenantId: string, instanceId: string): string {
  return `${tenantId}/${instanceId}/%TRACE%`;
}

export class TraceLog {
  private readonly pending = new Map<string, TracedEvent[]>();
  private pendingCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  dropped = 0;

  constructor(
    private readonly store: MessageStore,
    private readonly options: TraceLogOptions = {},
  ) {}

  record(tenantId: string, instanceId: string, events: readonly TracedEvent[]): void {
    if (events.length === 0) return;
    if (this.pendingCount + events.length > (this.options.maxPendingEvents ?? 65_536)) {
      this.dropped += events.length;
      return;
    }
    const topic = traceTopic(tenantId, instanceId);
    let list = this.pending.get(topic);
    if (list === undefined) {
      list = [];
      this.pending.set(topic, list);
    }
    for (const event of events) list.push(event);
    this.pendingCount += events.length;
    this.timer ??= setTimeout(() => void this.flush(), this.options.lingerMs ?? 20);
  }

  /** Writes what waits; resolves when it is written (close, tests). */
  flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return this.writing;
    const batches = [...this.pending];
    this.pending.clear();
    this.pendingCount = 0;
    const now = Date.now();
    const records = batches.map(([topic, events]) => ({
      topic,
      queueId: 0,
      keys: [...new Set(events.map((event) => event.position))],
      body: encodeTraceRecord(events),
      bornTimestampMs: now,
      flags: MessageFlags.SYSTEM,
    }));
    this.writing = this.writing
      .then(() => this.store.append(records))
      .then(
        () => undefined,
        (error: unknown) => {
          this.dropped += batches.reduce((n, [, events]) => n + events.length, 0);
          this.options.onError?.(error);
        },
      );
    return this.writing;
  }

  /** DELIVERED events of what a receive handed out (RETRIED first for a redelivery). */
  delivered(
    topic: TopicDescriptor,
    group: string,
    consumerId: string | undefined,
    answers: readonly ReceivedMessage[],
    time: number,
  ): void {
    const events: TracedEvent[] = [];
    for (const answer of answers) {
      const base = {
        position: tracePosition(topic.topic, answer.queueId, answer.queueOffset),
        time,
        group,
        deliveryAttempt: answer.deliveryAttempt,
        ...(consumerId !== undefined ? { consumerId } : {}),
      };
      if (answer.deliveryAttempt > 1) events.push({ ...base, type: 'RETRIED' });
      events.push({ ...base, type: 'DELIVERED' });
    }
    this.record(topic.tenantId, topic.instanceId, events);
  }

  /** ACKED events of acked offsets per queue; a re-sent copy's original position is read from
   *  the copy (rare), in a background task handed to `tasks` (the broker core). */
  acked(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    acked: readonly { queue: number; offsets: readonly number[] }[],
    tasks: { track(task: Promise<unknown>, what: string): void },
  ): void {
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
        this.store.readQueue(resendTopic(group, topic.topic), 0, offset, { maxMessages: 1 }),
      );
      tasks.track(
        Promise.all(copies).then((results) => {
          const positions = results.flatMap((result) =>
            result.messages.map((copy) => origin(copy)),
          );
          this.record(
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
    this.record(topic.tenantId, topic.instanceId, events);
  }

  /** The DEAD_LETTERED event of a message (or copy) moved to a group's dead-letter queue. */
  deadLettered(
    topic: TopicDescriptor,
    group: string,
    message: StoredMessage,
    deliveryAttempt: number,
  ): void {
    const place = origin(message);
    this.record(topic.tenantId, topic.instanceId, [
      {
        position: tracePosition(topic.topic, place.queueId, place.queueOffset),
        time: Date.now(),
        type: 'DEAD_LETTERED',
        group,
        deliveryAttempt,
      },
    ]);
  }

  /** RESENT events of dead letters copied back to their group. */
  resent(group: GroupDescriptor, deadLetters: readonly StoredMessage[]): void {
    const time = Date.now();
    this.record(
      group.tenantId,
      group.instanceId,
      deadLetters.map((message) => {
        const place = origin(message);
        const userTopic = message.properties[SystemProperty.originTopic] ?? '';
        return {
          position: tracePosition(userTopic, place.queueId, place.queueOffset),
          time,
          type: 'RESENT' as const,
          group: group.group,
        };
      }),
    );
  }

  /** A message's recorded events, oldest first (at most the last `limit` records that name it). */
  async events(
    tenantId: string,
    instanceId: string,
    position: string,
    limit = 64,
  ): Promise<TraceEvent[]> {
    const records = await this.store.queryByKey(traceTopic(tenantId, instanceId), position, limit);
    const events: TraceEvent[] = [];
    // oldest record first, so events of one millisecond keep the order they were written in
    for (const record of records.reverse()) {
      const where = `trace record at log offset ${record.logOffset}`;
      for (const item of decodeTraceRecord(record.body, where)) {
        if (item.position !== position) continue;
        const { position: _position, ...event } = item;
        events.push(event);
      }
    }
    return events.sort((a, b) => a.time - b.time);
  }
}

export function encodeTraceRecord(events: readonly TracedEvent[]): Buffer {
  return Buffer.from(JSON.stringify({ v: TRACE_RECORD_VERSION, events }));
}

/** The events of a trace record body; `where` names the record in errors. */
export function decodeTraceRecord(body: Buffer, where = 'trace record'): TracedEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString());
  } catch (error) {
    throw new WharfError('CorruptIndex', `${where}: not JSON`, { cause: error });
  }
  let items: unknown[];
  if (Array.isArray(parsed)) items = parsed;
  else {
    const o = objectOf(parsed, where, 'document');
    versionOf(o, where, TRACE_RECORD_VERSION);
    items = arrayOf(o.events, where, 'events');
  }
  return items.map((item, i): TracedEvent => {
    const field = `events[${i}]`;
    const o = objectOf(item, where, field);
    return {
      position: stringOf(o.position, where, `${field}.position`),
      time: numberOf(o.time, where, `${field}.time`),
      type: oneOf(o.type, TRACE_EVENT_TYPES, where, `${field}.type`),
      ...(o.group !== undefined ? { group: stringOf(o.group, where, `${field}.group`) } : {}),
      ...(o.consumerId !== undefined
        ? { consumerId: stringOf(o.consumerId, where, `${field}.consumerId`) }
        : {}),
      ...(o.deliveryAttempt !== undefined
        ? { deliveryAttempt: intOf(o.deliveryAttempt, where, `${field}.deliveryAttempt`) }
        : {}),
      ...(o.queueId !== undefined
        ? { queueId: intOf(o.queueId, where, `${field}.queueId`, 0, 0xffff) }
        : {}),
      ...(o.checkCount !== undefined
        ? { checkCount: intOf(o.checkCount, where, `${field}.checkCount`) }
        : {}),
      ...(o.reason !== undefined ? { reason: stringOf(o.reason, where, `${field}.reason`) } : {}),
    };
  });
}
