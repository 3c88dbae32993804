// Prometheus metrics of one gateway. A registry per app (not prom-client's global one), so that
// several apps in one process (tests, all-in-one) do not collide.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route' | 'status_class'>;
  readonly messagesPublished: Counter<'tenant'>;
  readonly messagesReceived: Counter<'tenant'>;
  readonly throttled: Counter<'tenant' | 'quota'>;
  readonly parkedReceives: Gauge;
  readonly bodyBytesInFlight: Gauge;
  readonly connectionsRefused: Counter;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly alarmEvaluations: Counter;

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
      help: 'Long-poll receive calls waiting in this gateway',
      registers,
    });
    this.bodyBytesInFlight = new Gauge({
      name: 'wharf_request_body_bytes_in_flight',
      help: 'Bytes of request bodies reserved by requests being received or answered (bounded by WHARF_BODIES_IN_FLIGHT_MB)',
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
  }
}
