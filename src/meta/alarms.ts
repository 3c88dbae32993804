// Alarms of an instance: a metric of a topic (and group) watched against a threshold, notified
// by signed webhook POSTs. Stored here; evaluated and delivered by src/alarms. Putting one adds
// its instance to the set the evaluator walks; deleting one drops its state and history. A PUT is
// one script that writes only while the instance exists, compared and set against the record read,
// and counts the instance's alarms in the same step (at most MAX_ALARMS_PER_INSTANCE).
// Each alarm has a webhook signing secret, sealed at rest and shown only when the alarm is
// created.
import { randomBytes } from 'node:crypto';
import { WharfError } from '../errors.js';
import { ALARM, decodeRecord, encodeRecord, type StoredAlarm } from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';
import type { SecretBox } from './secret-box.js';
import type { Alarm, AlarmSpec } from './types.js';

/** The most alarms an instance may have: each is read from the brokers every round. */
export const MAX_ALARMS_PER_INSTANCE = 100;
/** put-alarm's answer when the instance has MAX_ALARMS_PER_INSTANCE already. */
const AT_LIMIT = -3;
/** put-alarm's answer when the alarm changed between the read and the write. */
const CHANGED_SINCE_READ = -7;
/** Reads and writes a PUT makes before giving up on an alarm changed under it each time. */
const PUT_ATTEMPTS = 5;

export class AlarmRepository {
  constructor(
    private readonly ctx: RepoContext,
    private readonly box: SecretBox,
  ) {}

  /** Creates or replaces; the secret is returned only when the alarm is created. Written only
   *  while the instance exists (InstanceNotFound otherwise); a creation past
   *  MAX_ALARMS_PER_INSTANCE is QuotaExceeded. */
  async put(
    tenantId: string,
    instanceId: string,
    alarmId: string,
    spec: AlarmSpec,
    now = Date.now(),
  ): Promise<{ created: boolean; alarm: Alarm; webhookSecret?: string }> {
    const { keys, redis, scripts } = this.ctx;
    const key = keys.alarms(tenantId, instanceId);
    // A concurrent creation, replacement or deletion changes what was read: read again.
    for (let attempt = 1; ; attempt++) {
      const existingJson = await redis.hget(key, alarmId);
      const existing =
        existingJson === null ? null : decodeRecord(ALARM, existingJson, { key, field: alarmId });
      const webhookSecret = existing === null ? randomBytes(24).toString('base64url') : undefined;
      const stored: StoredAlarm = {
        alarmId,
        tenantId,
        instanceId,
        metric: spec.metric,
        topic: spec.topic,
        ...(spec.group === undefined ? {} : { group: spec.group }),
        threshold: spec.threshold,
        forSeconds: spec.forSeconds,
        webhookUrl: spec.webhookUrl,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
        sealedWebhookSecret:
          existing?.sealedWebhookSecret ?? this.box.seal(webhookSecret!, `alarm:${alarmId}`),
      };
      const result = Number(
        await scripts.run(
          'put-alarm',
          [keys.instances(tenantId), key],
          [instanceId, alarmId, encodeRecord(stored), existingJson ?? '', MAX_ALARMS_PER_INSTANCE],
        ),
      );
      if (result === CHANGED_SINCE_READ) {
        if (attempt < PUT_ATTEMPTS) continue;
        throw new WharfError('Unavailable', `alarm ${alarmId} keeps changing: send it again`);
      }
      if (result === AT_LIMIT) {
        throw new WharfError(
          'QuotaExceeded',
          `the instance has ${MAX_ALARMS_PER_INSTANCE} alarms, the most it may have`,
        );
      }
      if (result < 0) throw scriptError(result, `alarm ${alarmId}`);
      const created = result === 1;
      await redis.sadd(keys.alarmInstances(), `${tenantId}/${instanceId}`);
      return {
        created,
        alarm: view(stored),
        ...(created ? { webhookSecret: webhookSecret! } : {}),
      };
    }
  }

  async get(tenantId: string, instanceId: string, alarmId: string): Promise<Alarm | null> {
    const stored = await this.stored(tenantId, instanceId, alarmId);
    return stored === null ? null : view(stored);
  }

  async list(tenantId: string, instanceId: string): Promise<Alarm[]> {
    const stored = await readHashRecords(
      this.ctx,
      ALARM,
      this.ctx.keys.alarms(tenantId, instanceId),
    );
    return stored.map(view).sort((a, b) => (a.alarmId < b.alarmId ? -1 : 1));
  }

  async delete(tenantId: string, instanceId: string, alarmId: string): Promise<boolean> {
    const { keys } = this.ctx;
    const [[, removed] = []] =
      (await this.ctx.redis
        .multi()
        .hdel(keys.alarms(tenantId, instanceId), alarmId)
        .hdel(keys.alarmStates(tenantId, instanceId), alarmId)
        .del(keys.alarmHistory(tenantId, instanceId, alarmId))
        .exec()) ?? [];
    return removed === 1;
  }

  /** The webhook signing secret (for the notifier job). */
  async webhookSecret(
    tenantId: string,
    instanceId: string,
    alarmId: string,
  ): Promise<string | null> {
    const stored = await this.stored(tenantId, instanceId, alarmId);
    if (stored === null) return null;
    return this.box.open(stored.sealedWebhookSecret, `alarm:${alarmId}`);
  }

  private async stored(
    tenantId: string,
    instanceId: string,
    alarmId: string,
  ): Promise<StoredAlarm | null> {
    return readHashRecord(this.ctx, ALARM, this.ctx.keys.alarms(tenantId, instanceId), alarmId);
  }
}

function view(stored: StoredAlarm): Alarm {
  const { sealedWebhookSecret: _sealed, ...alarm } = stored;
  return alarm;
}
