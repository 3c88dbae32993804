// The broker's figures on a Prometheus registry: store size and positions, group-commit rounds
// and fdatasyncs, caches, pending appends, parked receives, in-flight messages. Read from the
// broker's stats() at each scrape, so nothing is counted twice or kept in sync by hand.
import { Gauge, type Registry } from 'prom-client';

/** snake_case of a camelCase stats key: `fdatasyncs` → `fdatasyncs`, `logEndOffset` → `log_end_offset`. */
export function metricSuffix(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

export function registerBrokerMetrics(
  registry: Registry,
  brokerId: number,
  stats: () => Record<string, number>,
): void {
  new Gauge({
    name: 'wharf_broker_stat',
    help: 'Broker and store figures by name (store positions in bytes, counters since start)',
    labelNames: ['broker', 'stat'],
    registers: [registry],
    collect() {
      for (const [key, value] of Object.entries(stats())) {
        if (Number.isFinite(value))
          this.set({ broker: String(brokerId), stat: metricSuffix(key) }, value);
      }
    },
  });
}
