// Samples the brokers' statistics of every topic and (topic, group) pair for /metrics, labelled
// by tenant, instance, topic and group, every `intervalMs` in the background (a scrape reads the
// last sample, it never waits on brokers). Label cardinality is bounded: a tenant gets at most
// `maxSeriesPerTenant` labelled series (topics and pairs, in name order); the rest are folded
// into one series with instance, topic and group "_other" (counts and rates summed, ages the
// maximum), and `wharf_stats_folded_series` says how many were folded. Each sample also gives
// the usage meter every instance's storage bytes. Group series cover the topics a group has
// received from (a tenant's 1,000 topics × 1,000 groups made a million pairs a pass, which held
// the event loop for seconds), and the pass lets other work run between its calls.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BrokerClient, GroupStats } from '../cluster/index.js';
import type { MetaStore } from '../meta/index.js';
import type { GatewayMetrics, Logger } from '../telemetry/index.js';
import type { UsageMeter } from './usage-meter.js';

export const STATS_SAMPLE_INTERVAL_MS = 30_000;
export const MAX_SERIES_PER_TENANT = 200;
export const OTHER = '_other';
/** Broker calls between two turns given to other work (in process they resolve at once). */
const CALLS_PER_TURN = 64;

type GroupFigures = Pick<
  GroupStats,
  | 'backlog'
  | 'inflight'
  | 'oldestUnackedAgeMs'
  | 'deliveredRatePerSecond'
  | 'ackedRatePerSecond'
  | 'retries'
  | 'deadLetters'
>;

interface TopicFigures {
  messagesIn: number;
  bytesIn: number;
  publishRatePerSecond: number;
}

export interface StatsSamplerOptions {
  meta: MetaStore;
  brokers: BrokerClient;
  metrics: GatewayMetrics;
  usage: UsageMeter;
  logger: Logger;
  intervalMs?: number;
  maxSeriesPerTenant?: number;
}

export class StatsSampler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly maxSeries: number;

  constructor(private readonly o: StatsSamplerOptions) {
    this.maxSeries = o.maxSeriesPerTenant ?? MAX_SERIES_PER_TENANT;
  }

  start(): void {
    const every = this.o.intervalMs ?? STATS_SAMPLE_INTERVAL_MS;
    if (every <= 0) return;
    const next = (delayMs: number) => {
      if (this.closed) return;
      this.timer = setTimeout(() => {
        this.running = this.sample()
          .catch((err: unknown) => this.o.logger.warn({ err }, 'stats sample failed'))
          .finally(() => {
            this.running = undefined;
            next(every);
          });
      }, delayMs);
      this.timer.unref();
    };
    next(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One sample of every tenant; the gauges are replaced at the end, all at once. */
  async sample(): Promise<void> {
    const { meta, brokers } = this.o;
    const topicRows: { labels: Record<string, string>; f: TopicFigures }[] = [];
    const groupRows: { labels: Record<string, string>; f: GroupFigures }[] = [];
    const folded: { tenant: string; count: number }[] = [];
    let calls = 0;
    const call = async <T>(made: Promise<T>): Promise<T | null> => {
      // its failure handled before the turn given away: a call to a broker that is down fails
      // at once, and unhandled for a turn its rejection would end the process
      const answer = made.catch(() => null);
      if (++calls % CALLS_PER_TURN === 0) await nextTurn();
      return answer;
    };
    // a tenant deleted through another gateway: its counter series go here too (those counted
    // before the list was read, so a tenant created meanwhile keeps its counts)
    const counted = await this.o.metrics.tenantsCounted();
    const tenants = await meta.tenants.list();
    const live = new Set(tenants.map((tenant) => tenant.tenantId));
    for (const tenantId of counted) if (!live.has(tenantId)) this.o.metrics.forgetTenant(tenantId);
    for (const tenant of tenants) {
      if (this.closed) return;
      const tenantId = tenant.tenantId;
      let series = 0;
      let foldedCount = 0;
      const otherTopic: TopicFigures = { messagesIn: 0, bytesIn: 0, publishRatePerSecond: 0 };
      const otherGroup: GroupFigures = emptyGroup();
      let otherTopics = 0;
      let otherGroups = 0;
      const instances = [...(await meta.instanceList(tenantId))].sort(byKey('instanceId'));
      for (const instance of instances) {
        const instanceId = instance.instanceId;
        const topics = [...(await meta.topicList(tenantId, instanceId))].sort(byKey('topic'));
        const groups = [...(await meta.groupList(tenantId, instanceId))].sort(byKey('group'));
        let storageBytes = 0;
        let unsampled = false;
        for (const topic of topics) {
          const ts = await call(brokers.topicStats(topic));
          if (ts === null) {
            unsampled = true;
            continue;
          }
          const consuming = ts.consumingGroups === undefined ? null : new Set(ts.consumingGroups);
          storageBytes += ts.bytesIn;
          const f = {
            messagesIn: ts.messagesIn,
            bytesIn: ts.bytesIn,
            publishRatePerSecond: ts.publishRatePerSecond,
          };
          if (series < this.maxSeries) {
            series++;
            topicRows.push({
              labels: { tenant: tenantId, instance: instanceId, topic: topic.topic },
              f,
            });
          } else {
            foldedCount++;
            otherTopics++;
            otherTopic.messagesIn += f.messagesIn;
            otherTopic.bytesIn += f.bytesIn;
            otherTopic.publishRatePerSecond += f.publishRatePerSecond;
          }
          for (const group of groups) {
            if (consuming !== null && !consuming.has(group.group)) continue;
            const gs = await call(brokers.groupStats(topic, group));
            if (gs === null) continue;
            if (series < this.maxSeries) {
              series++;
              groupRows.push({
                labels: {
                  tenant: tenantId,
                  instance: instanceId,
                  topic: topic.topic,
                  group: group.group,
                },
                f: gs,
              });
            } else {
              foldedCount++;
              otherGroups++;
              addGroup(otherGroup, gs);
            }
          }
        }
        // a topic whose brokers did not answer: no sample this time rather than one too low
        if (!unsampled) this.o.usage.count(tenantId, instanceId, 'storageBytes', storageBytes);
      }
      const other = { tenant: tenantId, instance: OTHER, topic: OTHER };
      if (otherTopics > 0) topicRows.push({ labels: other, f: otherTopic });
      if (otherGroups > 0) groupRows.push({ labels: { ...other, group: OTHER }, f: otherGroup });
      if (foldedCount > 0) folded.push({ tenant: tenantId, count: foldedCount });
    }
    this.publish(topicRows, groupRows, folded);
  }

  private publish(
    topicRows: { labels: Record<string, string>; f: TopicFigures }[],
    groupRows: { labels: Record<string, string>; f: GroupFigures }[],
    folded: { tenant: string; count: number }[],
  ): void {
    const m = this.o.metrics.resources;
    for (const gauge of Object.values(m) as { reset(): void }[]) gauge.reset();
    for (const { labels, f } of topicRows) {
      m.topicMessagesIn.set(labels, f.messagesIn);
      m.topicBytesIn.set(labels, f.bytesIn);
      m.topicPublishRate.set(labels, f.publishRatePerSecond);
    }
    for (const { labels, f } of groupRows) {
      m.groupBacklog.set(labels, f.backlog);
      m.groupInflight.set(labels, f.inflight);
      m.groupOldestUnackedAge.set(labels, f.oldestUnackedAgeMs / 1000);
      m.groupDeliveredRate.set(labels, f.deliveredRatePerSecond);
      m.groupAckedRate.set(labels, f.ackedRatePerSecond);
      m.groupRetries.set(labels, f.retries);
      m.groupDeadLetters.set(labels, f.deadLetters);
    }
    for (const { tenant, count } of folded) m.foldedSeries.set({ tenant }, count);
  }
}

function emptyGroup(): GroupFigures {
  return {
    backlog: 0,
    inflight: 0,
    oldestUnackedAgeMs: 0,
    deliveredRatePerSecond: 0,
    ackedRatePerSecond: 0,
    retries: 0,
    deadLetters: 0,
  };
}

function addGroup(into: GroupFigures, gs: GroupFigures): void {
  into.backlog += gs.backlog;
  into.inflight += gs.inflight;
  into.oldestUnackedAgeMs = Math.max(into.oldestUnackedAgeMs, gs.oldestUnackedAgeMs);
  into.deliveredRatePerSecond += gs.deliveredRatePerSecond;
  into.ackedRatePerSecond += gs.ackedRatePerSecond;
  into.retries += gs.retries;
  into.deadLetters += gs.deadLetters;
}

function byKey<K extends string>(key: K) {
  return (a: Record<K, string>, b: Record<K, string>) => (a[key] < b[key] ? -1 : 1);
}
