// The records of delayed messages in the commit log. Each instance has one internal schedule
// topic `<tenant>/<instance>/%SCHEDULE%`, dropped with the instance like its other internal topics:
// queue 0 holds the schedule records (the message as published, sealed as usual, plus its due
// time and target), queue 1 the scheduler's marks (which records were cancelled or dispatched,
// and the dispatch checkpoint). A dispatched copy carries the key scheduleKey(logOffset) in its
// real topic, so "was it dispatched?" is answered by the key index after any crash.
// Mark record body (UTF-8 JSON): {"v":1,"op":"cancel"|"done","logOffsets":[N,…],"checkpoint":N}
// where checkpoint is the queue-0 offset below which every schedule record is finished.
import { intOf, intsOf, oneOf, parseJsonObject, versionOf } from './json-fields.js';

export const SCHEDULE_MARK_VERSION = 1;
/** Queue of the schedule topic holding schedule records. */
export const SCHEDULE_QUEUE_ID = 0;
/** Queue of the schedule topic holding cancel and done marks. */
export const MARK_QUEUE_ID = 1;

const SCHEDULE_SUFFIX = '/%SCHEDULE%';

/** Reserved properties of a schedule record (taken off the dispatched copy). */
export const ScheduleProperty = {
  deliverAtMs: '\u0001dat',
  /** The user topic name and queue id the message is dispatched to. */
  targetTopic: '\u0001tt',
  targetQueueId: '\u0001tq',
} as const;

/** The schedule topic of a tenant's instance. */
export function scheduleTopic(tenantId: string, instanceId: string): string {
  return `${tenantId}/${instanceId}${SCHEDULE_SUFFIX}`;
}

export function isScheduleTopic(name: string): boolean {
  return name.endsWith(SCHEDULE_SUFFIX) && name.split('/').length === 3;
}

/** The store topic a schedule record is dispatched to: `<tenant>/<instance>/<topic>`. */
export function targetStoreTopic(scheduleTopicName: string, userTopic: string): string {
  return `${scheduleTopicName.slice(0, -SCHEDULE_SUFFIX.length)}/${userTopic}`;
}

/** Record key of the dispatched copy of the schedule record at `logOffset`. */
export function scheduleKey(logOffset: number): string {
  return `\u0001sched:${logOffset.toString(16)}`;
}

/** Record key of a schedule record published with a dedupId (the schedule topic is shared by
 *  the instance's topics: the key names the user topic). Not carried to the dispatched copy. */
export function scheduleDedupKey(userTopic: string, dedupId: string): string {
  return `\u0001sdedup:${userTopic}\u0000${dedupId}`;
}

/** Trace position of a delayed message's own events (SCHEDULED, CANCELLED) before dispatch. */
export function schedulePosition(userTopic: string, logOffset: number): string {
  return `${userTopic}:s:${logOffset}`;
}

export interface ScheduleMark {
  op: 'cancel' | 'done';
  logOffsets: number[];
  checkpoint: number;
}

export function encodeScheduleMark(mark: ScheduleMark): Buffer {
  return Buffer.from(JSON.stringify({ v: SCHEDULE_MARK_VERSION, ...mark }));
}

export function decodeScheduleMark(data: Buffer, where = 'schedule mark'): ScheduleMark {
  const o = parseJsonObject(data.toString(), where);
  versionOf(o, where, SCHEDULE_MARK_VERSION);
  return {
    op: oneOf(o.op, ['cancel', 'done'] as const, where, 'op'),
    logOffsets: intsOf(o.logOffsets, where, 'logOffsets'),
    checkpoint: intOf(o.checkpoint, where, 'checkpoint'),
  };
}
