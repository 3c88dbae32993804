// Alarms of an instance: a metric of a topic (and group) watched against a threshold, notified
// by signed webhook POSTs. Stored here; evaluated and delivered by src/alarms. Putting one adds
// its instance to the set the evaluator walks; deleting one drops its state and history.
// Each alarm has a webhook signing secret, sealed at rest and shown only when the alarm is
// created.
import { randomBytes } from 'node:crypto';
import { ALARM, encodeRecord, type StoredAlarm } from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import type { SecretBox } from './secret-box.js';
import type { Alarm, AlarmSpec } from './types.js';

export class AlarmRepository {
  constructor(
    private readonly ctx: RepoContext,
    private readonly box: SecretBox,
  ) {}

  /** Creates or replaces; the secret is returned only when the alarm is created. */
  async put(
    tenantId: string,
    instanceId: string,
    alarmId: string,
    spec: AlarmSpec,
    now = Date.now(),
  ): Promise<{ created: boolean; alarm: Alarm; webhookSecret?: string }> {
    const key = this.ctx.keys.alarms(tenantId, instanceId);
    const existing = await readHashRecord(this.ctx, ALARM, key, alarmId);
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
    // Created only if nobody created it meanwhile; a concurrent creation makes this an update.
    const created =
      existing === null
        ? (await this.ctx.redis.hsetnx(key, alarmId, encodeRecord(stored))) === 1
        : false;
    if (!created) await this.ctx.redis.hset(key, alarmId, encodeRecord(stored));
    await this.ctx.redis.sadd(this.ctx.keys.alarmInstances(), `${tenantId}/${instanceId}`);
    return {
      created,
      alarm: view(stored),
      ...(created ? { webhookSecret: webhookSecret! } : {}),
    };
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
