// Evaluates every alarm every `intervalMs` on the one node holding the evaluation lease in Redis
// (renewed each tick; a node that dies loses it after `leaseTtlMs` and another takes over). For
// each rule: read the metric from the brokers' counters (BrokerClient stats, never a scan), step
// the rule's state machine, and on a transition enqueue the notification (its job id makes a
// repeat a no-op), then store the state, then add the history line. The state is in Redis, so a
// restarted node, or the next lease holder, neither fires twice nor forgets a pending condition.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { BrokerClient } from '../cluster/index.js';
import { RedisLease, type Alarm, type AlarmState, type MetaStore } from '../meta/index.js';
import type { Logger } from '../telemetry/index.js';
import { INITIAL_ALARM_STATE, stepAlarm } from './alarm-state-machine.js';
import { webhookPayload, type NotificationJob } from './notification.js';

/** Where notifications go (the BullMQ notifier, or a test's list). */
export interface NotificationSink {
  enqueue(job: NotificationJob): Promise<void>;
}

export interface AlarmEvaluatorOptions {
  meta: MetaStore;
  brokers: BrokerClient;
  notifications: NotificationSink;
  logger: Logger;
  /** Default 5000 (the bound); tests use less. */
  intervalMs?: number;
  /** Default 3 × intervalMs, at least 5000. */
  leaseTtlMs?: number;
  /** Deadline of one metric read (default 5000). */
  readTimeoutMs?: number;
  /** Called after every tick with the rules evaluated (metrics, tests). */
  onTick?: (evaluated: number) => void;
}

export const DEFAULT_EVALUATION_INTERVAL_MS = 5000;
/** Rules of one instance whose metrics are read at once. */
const PARALLEL_READS = 16;
/** Instances whose rules are evaluated at once (so up to 4 × 16 reads). */
const PARALLEL_INSTANCES = 4;

/** Runs `work` on every item, at most `limit` at a time. */
async function eachBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export class AlarmEvaluator {
  private readonly intervalMs: number;
  private readonly leaseTtlMs: number;
  private readonly readTimeoutMs: number;
  private readonly lease: RedisLease;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: AlarmEvaluatorOptions) {
    this.intervalMs = options.intervalMs ?? DEFAULT_EVALUATION_INTERVAL_MS;
    this.leaseTtlMs = options.leaseTtlMs ?? Math.max(5000, 3 * this.intervalMs);
    this.readTimeoutMs = options.readTimeoutMs ?? 5000;
    const holder = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    this.lease = new RedisLease(options.meta.repoContext, options.meta.keys.alarmLease(), holder);
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops ticking, waits for a tick under way, and gives the lease back. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    await this.lease.release().catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.options.logger.warn({ err }, 'alarm evaluation failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** One round over every alarm, if this node holds the lease. */
  async tick(nowMs = Date.now()): Promise<number> {
    if (!(await this.lease.hold(this.leaseTtlMs))) return 0;
    const { meta } = this.options;
    let evaluated = 0;
    let leaseLost = false;
    // Several instances at once, as several rules: stats that do not answer cost the round one
    // read deadline, not one an instance (every other tenant's rules wait behind them).
    await eachBounded(await meta.alarmStates.instances(), PARALLEL_INSTANCES, async (instance) => {
      if (this.closed || leaseLost) return;
      const { tenantId, instanceId } = instance;
      if ((await meta.instances.get(tenantId, instanceId)) === null) {
        await meta.alarmStates.forgetInstance(tenantId, instanceId);
        return;
      }
      const alarms = await meta.alarms.list(tenantId, instanceId);
      const states = await meta.alarmStates.states(tenantId, instanceId);
      const known = new Set(alarms.map((a) => a.alarmId));
      await meta.alarmStates.drop(
        tenantId,
        instanceId,
        [...states.keys()].filter((id) => !known.has(id)),
      );
      await eachBounded(alarms, PARALLEL_READS, async (alarm) => {
        await this.evaluate(alarm, states.get(alarm.alarmId) ?? INITIAL_ALARM_STATE, nowMs);
        evaluated++;
      });
      // A long round keeps the lease; one lost meanwhile ends the round (another node holds it).
      if (!leaseLost && !(await this.lease.hold(this.leaseTtlMs))) leaseLost = true;
    });
    this.options.onTick?.(evaluated);
    return evaluated;
  }

  private async evaluate(alarm: Alarm, previous: AlarmState, nowMs: number): Promise<void> {
    const { meta, logger } = this.options;
    let value: number | null;
    try {
      value = await this.read(alarm);
    } catch (err) {
      logger.debug({ err, alarmId: alarm.alarmId }, 'alarm metric unreadable: state kept');
      return;
    }
    if (value === null) return;
    const step = stepAlarm(previous, { value, nowMs }, alarm);
    if (!step.changed) return;
    const { tenantId, instanceId, alarmId } = alarm;
    if (step.transition !== undefined) {
      const state = step.transition === 'fired' ? 'firing' : 'resolved';
      await this.options.notifications.enqueue({
        v: 1,
        tenantId,
        instanceId,
        alarmId,
        alarmCreatedAt: alarm.createdAt,
        seq: step.state.seq,
        body: JSON.stringify(webhookPayload(alarm, state, value, nowMs, step.state.seq)),
      });
    }
    const event =
      step.transition === undefined
        ? undefined
        : {
            type: step.transition,
            time: nowMs,
            seq: step.state.seq,
            value,
            threshold: alarm.threshold,
          };
    // Not written if the alarm was deleted while its metric was read (its state would come back).
    const recorded = await meta.alarmStates.record(alarm, {
      state: step.state,
      ...(event === undefined ? {} : { event }),
    });
    if (recorded && step.transition !== undefined) {
      logger.info(
        { tenantId, instanceId, alarmId, value, threshold: alarm.threshold },
        `alarm ${step.transition}`,
      );
    }
  }

  /** The metric's value, or null when its topic or group no longer exists. */
  private async read(alarm: Alarm): Promise<number | null> {
    const { meta, brokers } = this.options;
    const topic = await meta.topic(alarm.tenantId, alarm.instanceId, alarm.topic);
    if (topic === null) return null;
    if (alarm.metric === 'publishRate') {
      const stats = await this.withDeadline(brokers.topicStats(topic));
      return stats.publishRatePerSecond;
    }
    if (alarm.group === undefined) return null;
    const group = await meta.group(alarm.tenantId, alarm.instanceId, alarm.group);
    if (group === null) return null;
    const stats = await this.withDeadline(brokers.groupStats(topic, group));
    return stats[alarm.metric];
  }

  private async withDeadline<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no stats within ${this.readTimeoutMs} ms`)),
        this.readTimeoutMs,
      );
    });
    work.catch(() => undefined);
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
