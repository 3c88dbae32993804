// Message trace: what happened to a message after it was published (delivered, acked, retried,
// dead-lettered, re-sent), kept in the store like RocketMQ's trace topic. Events are gathered
// per instance for a few milliseconds and written as one record of an internal trace topic whose
// keys name the messages' blocks (below), so the store's key index finds a message's events; they
// expire with the log. Keys are message positions, not ids, because an ack knows only the position its
// receipt handle names. Writing is off the answer path (a trace is diagnostics: a crash may lose
// the last few milliseconds of events) and bounded: past the bound events are dropped and counted.
//
// Record body (UTF-8 JSON), version 2: events that share everything but their message's offset
// are one run, so a receive or an ack of 32 messages is one small object, not 32:
//   {"v":2,"runs":[{"type":TYPE,"time":T,"group"?:G,"consumerId"?:C,"deliveryAttempt"?:N,
//     "queueId"?:N,"checkCount"?:N,"reason"?:R,"at":PREFIX,"offsets":[O,…]},…]}
// where each event's position is `PREFIX:O` (see tracePosition). Version 1, still read:
// {"v":1,"events":[{"position":P,"time":T,"type":TYPE,…the same optional fields},…]}, and a bare
// array of v1 events (written before versions existed).
//
// Record keys: one per block of TRACE_KEY_SPAN offsets a record's runs name, `PREFIX#BLOCK` (see
// traceBlockKey), so a receive or an ack of 32 messages adds one or two keys to the key index, not
// 32. Records written before blocks have one key per position (`PREFIX:O`); a query asks for both
// and keeps the events of its own position.
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
import {
  arrayOf,
  intOf,
  intsOf,
  numberOf,
  objectOf,
  oneOf,
  stringOf,
  versionOf,
} from './json-fields.js';
import { origin } from './message-view.js';
import { RESEND_QUEUE_ID, resendTopic, SystemProperty } from './names.js';

export const TRACE_RECORD_VERSION = 2;

/** An event and the message it is about, named by its first position (see tracePosition). */
export interface TracedEvent extends TraceEvent {
  position: string;
}

/** The key of a message's events: the user topic and its original queue position (a copy made
 *  for a dead letter or a re-send names its original). */
export function tracePosition(topic: string, queueId: number, queueOffset: number): string {
  return `${topic}:${queueId}:${queueOffset}`;
}

/** Offsets one record key covers (see traceBlockKey). */
export const TRACE_KEY_SPAN = 64;

/** The record key for `offset` under a position prefix (topic:queueId, or a schedule's):
 *  every record naming any offset of the same block of TRACE_KEY_SPAN carries it. */
export function traceBlockKey(at: string, offset: number): string {
  return `${at}#${Math.floor(offset / TRACE_KEY_SPAN)}`;
}

/** Records read at most per block key when looking up one message's events (newest first): a
 *  block's records also name its other messages, one record per receive or ack of any of them
 *  when they come one at a time. */
const MAX_BLOCK_RECORDS = 16_384;

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

/** Events that differ only in their message's offset: `at` is the position without it. */
export interface TraceRun extends TraceEvent {
  at: string;
  offsets: number[];
}

interface PendingRuns {
  runs: TraceRun[];
  events: number;
}

export class TraceLog {
  private readonly pending = new Map<string, PendingRuns>();
  private pendingCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  dropped = 0;

  constructor(
    private readonly store: MessageStore,
    private readonly options: TraceLogOptions = {},
  ) {}

  /** Single events (rare kinds: transactions, schedules, dead letters); each position ends
   *  with `:<offset>` as tracePosition and schedulePosition make them. */
  record(tenantId: string, instanceId: string, events: readonly TracedEvent[]): void {
    const runs: TraceRun[] = [];
    for (const { position, ...event } of events) {
      const colon = position.lastIndexOf(':');
      const offset = Number(position.slice(colon + 1));
      // a position without a numeric tail has no place in a record: dropped, never stored
      if (colon < 0 || !Number.isSafeInteger(offset) || offset < 0) this.dropped++;
      else runs.push({ ...event, at: position.slice(0, colon), offsets: [offset] });
    }
    this.recordRuns(tenantId, instanceId, runs);
  }

  recordRuns(tenantId: string, instanceId: string, runs: readonly TraceRun[]): void {
    let events = 0;
    for (const run of runs) events += run.offsets.length;
    if (events === 0) return;
    if (this.pendingCount + events > (this.options.maxPendingEvents ?? 65_536)) {
      this.dropped += events;
      return;
    }
    const topic = traceTopic(tenantId, instanceId);
    let pending = this.pending.get(topic);
    if (pending === undefined) {
      pending = { runs: [], events: 0 };
      this.pending.set(topic, pending);
    }
    for (const run of runs) if (run.offsets.length > 0) pending.runs.push(run);
    pending.events += events;
    this.pendingCount += events;
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
    const records = batches.map(([topic, pending]) => ({
      topic,
      queueId: 0,
      keys: traceKeys(pending.runs),
      body: encodeTraceRecord(pending.runs),
      bornTimestampMs: now,
      flags: MessageFlags.SYSTEM,
    }));
    this.writing = this.writing
      .then(() => this.store.append(records))
      .then(
        () => undefined,
        (error: unknown) => {
          this.dropped += batches.reduce((n, [, pending]) => n + pending.events, 0);
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
    // one run per (queue, attempt): a receive of one queue's new messages is one DELIVERED run
    const runs = new Map<string, TraceRun>();
    const retried: TraceRun[] = [];
    for (const answer of answers) {
      const attempt = answer.deliveryAttempt;
      const id = `${answer.queueId}/${attempt}`;
      let run = runs.get(id);
      if (run === undefined) {
        run = {
          type: 'DELIVERED',
          time,
          group,
          ...(consumerId !== undefined ? { consumerId } : {}),
          deliveryAttempt: attempt,
          at: `${topic.topic}:${answer.queueId}`,
          offsets: [],
        };
        runs.set(id, run);
        if (attempt > 1) retried.push({ ...run, type: 'RETRIED', offsets: run.offsets });
      }
      run.offsets.push(answer.queueOffset);
    }
    // a redelivery's RETRIED comes before its DELIVERED (same time: record order decides)
    this.recordRuns(topic.tenantId, topic.instanceId, [...retried, ...runs.values()]);
  }

  /** ACKED events of acked offsets per queue; a re-sent copy's original position is read from
   *  the copy (rare), in a background task handed to `tasks` (the broker core). */
  acked(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    acked: readonly { queue: number; offsets: readonly number[]; consumerId?: string }[],
    tasks: { track(task: Promise<unknown>, what: string): void },
  ): void {
    const time = Date.now();
    const run = (queueId: number, offsets: number[], consumerId?: string): TraceRun => ({
      type: 'ACKED',
      time,
      group: group.group,
      ...(consumerId !== undefined ? { consumerId } : {}),
      at: `${topic.topic}:${queueId}`,
      offsets,
    });
    const runs: TraceRun[] = [];
    for (const entry of acked) {
      if (entry.queue !== RESEND_QUEUE_ID) {
        runs.push(run(entry.queue, [...entry.offsets], entry.consumerId));
        continue;
      }
      const copies = entry.offsets.map((offset) =>
        this.store.readQueue(resendTopic(group, topic.topic), 0, offset, { maxMessages: 1 }),
      );
      tasks.track(
        Promise.all(copies).then((results) => {
          const places = results.flatMap((result) => result.messages.map((copy) => origin(copy)));
          this.recordRuns(
            topic.tenantId,
            topic.instanceId,
            places.map((place) => run(place.queueId, [place.queueOffset], entry.consumerId)),
          );
        }),
        'tracing acks of re-sent messages',
      );
    }
    this.recordRuns(topic.tenantId, topic.instanceId, runs);
  }

  /** The DEAD_LETTERED event of a message (or copy) moved to a group's dead-letter queue. */
  deadLettered(
    topic: TopicDescriptor,
    group: string,
    message: StoredMessage,
    deliveryAttempt: number,
    /** A BROADCASTING consumer's whose deliveries it ended; undefined for CLUSTERING. */
    consumerId?: string,
  ): void {
    const place = origin(message);
    this.record(topic.tenantId, topic.instanceId, [
      {
        position: tracePosition(topic.topic, place.queueId, place.queueOffset),
        time: Date.now(),
        type: 'DEAD_LETTERED',
        group,
        ...(consumerId !== undefined ? { consumerId } : {}),
        deliveryAttempt,
      },
    ]);
  }

  /** RESENT events of dead letters copied back to their group. */
  resent(
    group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
    deadLetters: readonly StoredMessage[],
  ): void {
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

  /** The recorded events of a message's `positions` (its own, and that of its committed or
   *  delivered copy), in the order they were written: from at most the last `limit` records
   *  keyed by each position (written before block keys) and the last MAX_BLOCK_RECORDS keyed
   *  by its block. Only those of records written after log offset `afterLogOffset` (the
   *  message's own record: earlier ones are of a topic deleted and created again under its name,
   *  whose queues started at the same offsets; trace records outlive a topic, they go with its
   *  instance). Told apart and ordered by log position, not by time: a clock stepped back
   *  would hide events, or list an ack before its delivery. */
  async events(
    tenantId: string,
    instanceId: string,
    positions: readonly string[],
    afterLogOffset: number,
    limit = 64,
  ): Promise<TraceEvent[]> {
    const topic = traceTopic(tenantId, instanceId);
    const records = new Map<number, StoredMessage>();
    const keep = (record: StoredMessage): void => {
      if (record.logOffset > afterLogOffset) records.set(record.logOffset, record);
    };
    for (const position of positions) {
      const seen = new Set<number>();
      for (const record of await this.store.queryByKey(topic, position, limit)) {
        seen.add(record.logOffset); // records written before block keys
        keep(record);
      }
      const colon = position.lastIndexOf(':');
      const offset = Number(position.slice(colon + 1));
      if (colon < 0 || !Number.isSafeInteger(offset)) continue;
      // a block's records name its other messages too (every receive and ack of any of them):
      // read one at a time, keeping only this message's events, up to a bound
      let read = 0;
      const key = traceBlockKey(position.slice(0, colon), offset);
      for await (const record of this.store.messagesByKey(topic, key)) {
        if (!seen.has(record.logOffset)) keep(record);
        if (++read >= MAX_BLOCK_RECORDS) break;
      }
    }
    const wanted = new Set(positions);
    const events: TraceEvent[] = [];
    for (const logOffset of [...records.keys()].sort((a, b) => a - b)) {
      const record = records.get(logOffset) as StoredMessage;
      const where = `trace record at log offset ${logOffset}`;
      for (const item of decodeTraceRecord(record.body, where)) {
        if (!wanted.has(item.position)) continue;
        const { position: _position, ...event } = item;
        events.push(event);
      }
    }
    return events;
  }
}

/** The keys of a record: the block of every position its runs name, once. */
export function traceKeys(runs: readonly TraceRun[]): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    let last = -1;
    for (const offset of run.offsets) {
      const block = Math.floor(offset / TRACE_KEY_SPAN);
      if (block === last) continue; // a run's offsets mostly ascend: one key per block
      last = block;
      keys.add(traceBlockKey(run.at, offset));
    }
  }
  return [...keys];
}

/** A record body (version 2) of runs; fields in a fixed order, so equal runs give equal bytes. */
export function encodeTraceRecord(runs: readonly TraceRun[]): Buffer {
  const out = runs.map((run) => ({
    type: run.type,
    time: run.time,
    group: run.group,
    consumerId: run.consumerId,
    deliveryAttempt: run.deliveryAttempt,
    queueId: run.queueId,
    checkCount: run.checkCount,
    reason: run.reason,
    at: run.at,
    offsets: run.offsets,
  }));
  return Buffer.from(JSON.stringify({ v: TRACE_RECORD_VERSION, runs: out }));
}

/** The events of a trace record body (any version); `where` names the record in errors. */
export function decodeTraceRecord(body: Buffer, where = 'trace record'): TracedEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString());
  } catch (error) {
    throw new WharfError('CorruptIndex', `${where}: not JSON`, { cause: error });
  }
  if (Array.isArray(parsed)) return parsed.map((item, i) => decodeV1Event(item, where, i));
  const o = objectOf(parsed, where, 'document');
  if (versionOf(o, where, TRACE_RECORD_VERSION) === 1)
    return arrayOf(o.events, where, 'events').map((item, i) => decodeV1Event(item, where, i));
  const events: TracedEvent[] = [];
  arrayOf(o.runs, where, 'runs').forEach((item, i) => {
    const field = `runs[${i}]`;
    const run = objectOf(item, where, field);
    const event = eventFields(run, where, field);
    const at = stringOf(run.at, where, `${field}.at`);
    for (const offset of intsOf(run.offsets, where, `${field}.offsets`))
      events.push({ position: `${at}:${offset}`, ...event });
  });
  return events;
}

function decodeV1Event(item: unknown, where: string, i: number): TracedEvent {
  const field = `events[${i}]`;
  const o = objectOf(item, where, field);
  return {
    position: stringOf(o.position, where, `${field}.position`),
    ...eventFields(o, where, field),
  };
}

/** The fields of an event (v1) or a run (v2) beside its position. */
function eventFields(o: Record<string, unknown>, where: string, field: string): TraceEvent {
  return {
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
}
