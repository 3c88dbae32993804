// The alarm evaluation's own records: the set of instances that have alarms (what the evaluator
// walks), each alarm's evaluation state (so a restart neither fires twice nor forgets a pending
// condition) and each alarm's history (transitions and delivery attempts), a list capped at
// HISTORY_MAX entries that expires HISTORY_TTL_MS after its last event. States and events are
// written only while their alarm exists (one script checks it), so none outlives its deletion.
import { ALARM_EVENT, ALARM_STATE, decodeRecord, encodeRecord } from './records.js';
import type { RepoContext } from './repo-context.js';
import type { AlarmEvent, AlarmState } from './types.js';

export const HISTORY_MAX = 200;
export const HISTORY_TTL_MS = 30 * 24 * 3_600_000;

/** Which alarm a record is of: the alarm's id and its createdAt (one incarnation of the id). */
export interface AlarmRef {
  tenantId: string;
  instanceId: string;
  alarmId: string;
  createdAt: number;
}

export interface AlarmInstance {
  tenantId: string;
  instanceId: string;
}

export class AlarmStateRepository {
  constructor(private readonly ctx: RepoContext) {}

  /** Instances that have had an alarm (some may have none left, or be deleted). */
  async instances(): Promise<AlarmInstance[]> {
    const members = await this.ctx.redis.smembers(this.ctx.keys.alarmInstances());
    return members.flatMap((member) => {
      const [tenantId, instanceId, ...rest] = member.split('/');
      return tenantId && instanceId && rest.length === 0 ? [{ tenantId, instanceId }] : [];
    });
  }

  async addInstance(tenantId: string, instanceId: string): Promise<void> {
    await this.ctx.redis.sadd(this.ctx.keys.alarmInstances(), `${tenantId}/${instanceId}`);
  }

  /** A deleted instance: out of the walk, its states gone (its histories expire). */
  async forgetInstance(tenantId: string, instanceId: string): Promise<void> {
    await this.ctx.redis
      .multi()
      .srem(this.ctx.keys.alarmInstances(), `${tenantId}/${instanceId}`)
      .del(this.ctx.keys.alarmStates(tenantId, instanceId))
      .exec();
  }

  async states(tenantId: string, instanceId: string): Promise<Map<string, AlarmState>> {
    const key = this.ctx.keys.alarmStates(tenantId, instanceId);
    const entries = Object.entries(await this.ctx.redis.hgetall(key));
    return new Map(
      entries.map(([field, json]) => [field, decodeRecord(ALARM_STATE, json, { key, field })]),
    );
  }

  /** Records an evaluation's new state, a history event, or both, in one script and only while
   *  the alarm (this one: its createdAt) exists: a round or a delivery that ends after the alarm
   *  was deleted (or deleted and created again) writes nothing. Whether it was recorded. */
  async record(
    alarm: AlarmRef,
    change: { state?: AlarmState; event?: AlarmEvent },
  ): Promise<boolean> {
    const { keys, scripts } = this.ctx;
    const { tenantId, instanceId, alarmId } = alarm;
    const recorded = await scripts.run(
      'record-alarm',
      [
        keys.alarms(tenantId, instanceId),
        keys.alarmStates(tenantId, instanceId),
        keys.alarmHistory(tenantId, instanceId, alarmId),
      ],
      [
        alarmId,
        alarm.createdAt,
        change.state === undefined ? '' : encodeRecord(change.state),
        change.event === undefined ? '' : encodeRecord(change.event),
        HISTORY_MAX,
        HISTORY_TTL_MS,
      ],
    );
    return recorded === 1;
  }

  /** Forgets alarms that were deleted: their states and histories. */
  async drop(tenantId: string, instanceId: string, alarmIds: string[]): Promise<void> {
    if (alarmIds.length === 0) return;
    const { keys } = this.ctx;
    await this.ctx.redis
      .multi()
      .hdel(keys.alarmStates(tenantId, instanceId), ...alarmIds)
      .del(...alarmIds.map((id) => keys.alarmHistory(tenantId, instanceId, id)))
      .exec();
  }

  /** Newest first, at most `limit`. */
  async history(
    tenantId: string,
    instanceId: string,
    alarmId: string,
    limit = HISTORY_MAX,
  ): Promise<AlarmEvent[]> {
    const key = this.ctx.keys.alarmHistory(tenantId, instanceId, alarmId);
    const lines = await this.ctx.redis.lrange(key, 0, Math.max(0, limit - 1));
    return lines.map((json, index) =>
      decodeRecord(ALARM_EVENT, json, { key, field: String(index) }),
    );
  }
}
