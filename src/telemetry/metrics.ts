// Prometheus metrics of one gateway. A registry per app (not prom-client's global one), so that
// several apps in one process (tests, all-in-one) do not collide. Label values are bounded: routes
// are patterns, statuses classes, resources capped per tenant (see gateway/stats-sampler.ts).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const TOPIC_LABELS = ['tenant', 'instance', 'topic'] as const;
const GROUP_LABELS = ['tenant', 'instance', 'topic', 'group'] as const;
type TopicLabel = (typeof TOPIC_LABELS)[number];
type GroupLabel = (typeof GROUP_LABELS)[number];

export interface ResourceGauges {
  topicMessagesIn: Gauge<TopicLabel>;
  topicBytesIn: Gauge<TopicLabel>;
  topicPublishRate: Gauge<TopicLabel>;
  groupBacklog: Gauge<GroupLabel>;
  groupInflight: Gauge<GroupLabel>;
  groupOldestUnackedAge: Gauge<GroupLabel>;
  groupDeliveredRate: Gauge<GroupLabel>;
  groupAckedRate: Gauge<GroupLabel>;
  groupRetries: Gauge<GroupLabel>;
  groupDeadLetters: Gauge<GroupLabel>;
  foldedSeries: Gauge<'tenant'>;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route' | 'status_class'>;
  readonly messagesPublished: Counter<'tenant'>;
  readonly messagesReceived: Counter<'tenant'>;
  readonly throttled: Counter<'tenant' | 'quota'>;
  readonly parkedReceives: Gauge;
  readonly bodyBytesInFlight: Gauge;
  readonly answerBytesInFlight: Gauge;
  readonly connectionsRefused: Counter;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly alarmEvaluations: Counter;
  /** Store group-commit rounds (fed by the store's commit observer). */
  readonly storeWriteSeconds: Histogram;
  readonly storeFdatasyncSeconds: Histogram;
  readonly groupCommitBatchSize: Histogram;
  /** Redis round trip, measured by a PING at each scrape. */
  readonly redisRoundTripSeconds: Gauge;
  /** Per-resource statistics (the gateway's stats sampler sets them). */
  readonly resources: ResourceGauges;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'wharf_' });
    }
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'wharf_http_requests_total',
      help: 'HTTP requests answered, by route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'wharf_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route pattern and status class (2xx, 4xx, 5xx)',
      labelNames: ['method', 'route', 'status_class'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.messagesPublished = new Counter({
      name: 'wharf_messages_published_total',
      help: 'Messages accepted by publish calls',
      labelNames: ['tenant'],
      registers,
    });
    this.messagesReceived = new Counter({
      name: 'wharf_messages_received_total',
      help: 'Messages handed out by receive calls',
      labelNames: ['tenant'],
      registers,
    });
    this.throttled = new Counter({
      name: 'wharf_throttled_total',
      help: 'Requests refused with 429 by a rate quota',
      labelNames: ['tenant', 'quota'],
      registers,
    });
    this.parkedReceives = new Gauge({
      name: 'wharf_parked_receives',
      help: 'Long polls (receive, transaction check) waiting in this gateway',
      registers,
    });
    this.bodyBytesInFlight = new Gauge({
      name: 'wharf_request_body_bytes_in_flight',
      help: 'Bytes of request bodies reserved by requests being received or answered (bounded by WHARF_BODIES_IN_FLIGHT_MB)',
      registers,
    });
    this.answerBytesInFlight = new Gauge({
      name: 'wharf_answer_bytes_in_flight',
      help: 'Bytes of message bodies in receive answers not yet out to their clients (bounded by WHARF_ANSWERS_IN_FLIGHT_MB)',
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'wharf_connections_refused_total',
      help: 'Connections refused with 429 because their address had too many open',
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'wharf_webhook_deliveries_total',
      help: 'Alarm webhook delivery attempts by outcome (delivered, failed, refused, dropped)',
      labelNames: ['outcome'],
      registers,
    });
    this.alarmEvaluations = new Counter({
      name: 'wharf_alarm_evaluations_total',
      help: 'Alarm rules evaluated (on the node holding the evaluation lease)',
      registers,
    });
    const latencyBuckets = [
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ];
    this.storeWriteSeconds = new Histogram({
      name: 'wharf_store_append_write_seconds',
      help: 'Time of one group-commit round’s writes to the commit log',
      buckets: latencyBuckets,
      registers,
    });
    this.storeFdatasyncSeconds = new Histogram({
      name: 'wharf_store_fdatasync_seconds',
      help: 'Time of one group-commit round’s fdatasync (sync flush policy)',
      buckets: latencyBuckets,
      registers,
    });
    this.groupCommitBatchSize = new Histogram({
      name: 'wharf_group_commit_batch_appends',
      help: 'Appends carried by one group-commit round',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    this.redisRoundTripSeconds = new Gauge({
      name: 'wharf_redis_round_trip_seconds',
      help: 'Redis PING round trip measured at the scrape (-1: no answer)',
      registers,
    });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Gauge<L>({ name, help, labelNames, registers });
    this.resources = {
      topicMessagesIn: gauge(
        'wharf_topic_messages_in',
        'Messages published to the topic since it was created',
        TOPIC_LABELS,
      ),
      topicBytesIn: gauge(
        'wharf_topic_bytes_in',
        'Bytes published to the topic since it was created',
        TOPIC_LABELS,
      ),
      topicPublishRate: gauge(
        'wharf_topic_publish_rate',
        'Messages published per second (recent)',
        TOPIC_LABELS,
      ),
      groupBacklog: gauge(
        'wharf_group_backlog',
        'Messages of the topic not yet acked by the group',
        GROUP_LABELS,
      ),
      groupInflight: gauge(
        'wharf_group_inflight',
        'Messages received by the group and not yet acked or redelivered',
        GROUP_LABELS,
      ),
      groupOldestUnackedAge: gauge(
        'wharf_group_oldest_unacked_age_seconds',
        'Age of the oldest message the group has not acked (consumption delay)',
        GROUP_LABELS,
      ),
      groupDeliveredRate: gauge(
        'wharf_group_delivered_rate',
        'Messages delivered to the group per second (recent)',
        GROUP_LABELS,
      ),
      groupAckedRate: gauge(
        'wharf_group_acked_rate',
        'Messages acked by the group per second (recent)',
        GROUP_LABELS,
      ),
      groupRetries: gauge(
        'wharf_group_retries',
        'Redeliveries of the group on the topic',
        GROUP_LABELS,
      ),
      groupDeadLetters: gauge(
        'wharf_group_dead_letters',
        'Messages in the group’s dead-letter queue',
        GROUP_LABELS,
      ),
      foldedSeries: gauge(
        'wharf_stats_folded_series',
        'Resource series of the tenant folded into the "_other" series (over the per-tenant cap)',
        ['tenant'] as const,
      ),
    };
  }

  /** Drops a deleted tenant's counter series (its resource gauges go with the next sample):
   *  tenants coming and going would otherwise grow the exposition until a restart. */
  forgetTenant(tenantId: string): void {
    this.messagesPublished.remove({ tenant: tenantId });
    this.messagesReceived.remove({ tenant: tenantId });
    for (const quota of ['publish', 'consume']) this.throttled.remove({ tenant: tenantId, quota });
  }

  /** The tenants with counter series now. */
  async tenantsCounted(): Promise<Set<string>> {
    const tenants = new Set<string>();
    for (const counter of [this.messagesPublished, this.messagesReceived, this.throttled]) {
      for (const { labels } of (await counter.get()).values)
        if (typeof labels.tenant === 'string') tenants.add(labels.tenant);
    }
    return tenants;
  }
}

/** Feeds the store's commit observer into the histograms. */
export function commitObserverFor(metrics: GatewayMetrics) {
  return {
    round(round: { appends: number; writeMs: number; syncMs: number | null }): void {
      metrics.groupCommitBatchSize.observe(round.appends);
      metrics.storeWriteSeconds.observe(round.writeMs / 1000);
      if (round.syncMs !== null) metrics.storeFdatasyncSeconds.observe(round.syncMs / 1000);
    },
  };
}
