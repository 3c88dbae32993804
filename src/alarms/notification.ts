// A notification: the JSON body POSTed to an alarm's webhook (`WebhookPayload`, version 1), and
// the job that carries it through the delivery queue (`NotificationJob`, version 1), decoded with
// checks when a worker takes it. The body is fixed when the transition happens, so every retry
// sends the same bytes (only the signature's timestamp changes).
import type { Alarm } from '../meta/index.js';

export const PAYLOAD_VERSION = 1;
export const JOB_VERSION = 1;

export interface WebhookPayload {
  version: 1;
  /** The alarm id. */
  rule: string;
  metric: Alarm['metric'];
  state: 'firing' | 'resolved';
  value: number;
  threshold: number;
  forSeconds: number;
  /** When the transition happened, epoch ms. */
  time: number;
  tenant: string;
  instance: string;
  topic: string;
  group?: string;
  /** The alarm's notification number: firing and its resolution have consecutive numbers. */
  notification: number;
}

export interface NotificationJob {
  v: 1;
  tenantId: string;
  instanceId: string;
  alarmId: string;
  /** The alarm's createdAt: a notification of a deleted and re-created alarm is dropped. */
  alarmCreatedAt: number;
  seq: number;
  /** The payload as sent (JSON). */
  body: string;
}

export function webhookPayload(
  alarm: Alarm,
  state: 'firing' | 'resolved',
  value: number,
  timeMs: number,
  seq: number,
): WebhookPayload {
  return {
    version: PAYLOAD_VERSION,
    rule: alarm.alarmId,
    metric: alarm.metric,
    state,
    value,
    threshold: alarm.threshold,
    forSeconds: alarm.forSeconds,
    time: timeMs,
    tenant: alarm.tenantId,
    instance: alarm.instanceId,
    topic: alarm.topic,
    ...(alarm.group === undefined ? {} : { group: alarm.group }),
    notification: seq,
  };
}

/** The queue's job id: one per notification, so enqueuing it again (a node that crashed between
 *  enqueuing and storing its state, then re-evaluated) adds nothing. */
export function notificationJobId(job: NotificationJob): string {
  return [job.tenantId, job.instanceId, job.alarmId, job.alarmCreatedAt, job.seq].join('|');
}

/** Checks a job's data (it comes back from Redis as unknown JSON). */
export function decodeNotificationJob(data: unknown): NotificationJob | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  const str = (k: string) => typeof d[k] === 'string';
  const int = (k: string) => Number.isSafeInteger(d[k]);
  if (d.v !== JOB_VERSION) return null;
  if (!str('tenantId') || !str('instanceId') || !str('alarmId') || !str('body')) return null;
  if (!int('alarmCreatedAt') || !int('seq')) return null;
  return {
    v: JOB_VERSION,
    tenantId: d.tenantId as string,
    instanceId: d.instanceId as string,
    alarmId: d.alarmId as string,
    alarmCreatedAt: d.alarmCreatedAt as number,
    seq: d.seq as number,
    body: d.body as string,
  };
}
