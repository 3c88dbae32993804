// infra/grafana/wharf.json imports into Grafana as it is (a data-source variable, no hard-coded
// data source uid, unique panel ids, a layout), and every metric its queries use is one that
// /metrics exports (a node's registry: the gateway's families and the broker's).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { GatewayMetrics, registerBrokerMetrics } from '../../src/telemetry/index.js';

interface Target {
  expr: string;
  refId: string;
  datasource: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}

const dashboard = JSON.parse(readFileSync('infra/grafana/wharf.json', 'utf8'));

t.test('every metric the dashboard queries is exported by /metrics', async (t) => {
  const metrics = new GatewayMetrics();
  registerBrokerMetrics(metrics.registry, 0, () => ({
    freeDiskBytes: 1,
    logEndOffset: 2,
    logMinOffset: 0,
  }));
  const exported = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  const histograms = new Set(
    (await metrics.registry.getMetricsAsJSON())
      .filter((m) => String(m.type) === 'histogram')
      .map((m) => m.name),
  );
  const panels: Panel[] = dashboard.panels;
  const exprs = [
    ...panels.flatMap((p) => (p.targets ?? []).map((target) => target.expr)),
    ...dashboard.templating.list
      .filter((v: { type: string }) => v.type === 'query')
      .map((v: { definition: string }) => v.definition),
  ];
  t.ok(exprs.length >= 15, 'queries found');
  const used = new Set<string>();
  for (const expr of exprs) {
    for (const raw of expr.match(/\bwharf_[a-z0-9_]+/g) ?? []) {
      const family = raw.replace(/_(bucket|sum|count)$/, '');
      const name = exported.has(raw) ? raw : histograms.has(family) ? family : raw;
      used.add(name);
      t.ok(exported.has(name), `${raw} (in ${expr.slice(0, 60)}…) is exported`);
    }
  }
  for (const needed of [
    'wharf_group_backlog',
    'wharf_group_oldest_unacked_age_seconds',
    'wharf_http_request_duration_seconds',
    'wharf_broker_stat',
    'wharf_store_fdatasync_seconds',
  ]) {
    t.ok(used.has(needed), `the dashboard shows ${needed}`);
  }
});

t.test('the dashboard imports unmodified', async (t) => {
  t.equal(typeof dashboard.uid, 'string');
  t.equal(typeof dashboard.title, 'string');
  t.ok(Number.isInteger(dashboard.schemaVersion));
  const datasourceVar = dashboard.templating.list.find(
    (v: { type: string }) => v.type === 'datasource',
  );
  t.match(datasourceVar, { name: 'datasource', query: 'prometheus' });
  const panels: Panel[] = dashboard.panels;
  t.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'unique panel ids');
  for (const panel of panels) {
    t.ok(panel.gridPos.w > 0 && panel.gridPos.w <= 24, `${panel.title}: width`);
    if (panel.type === 'row') continue;
    t.same(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `${panel.title}: ds`);
    for (const target of panel.targets ?? []) {
      t.equal(target.datasource.uid, '${datasource}');
    }
  }
});
