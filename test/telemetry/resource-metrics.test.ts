// /metrics carries per-resource statistics with tenant, instance, topic and group labels, and a
// tenant's labelled series stay within the cap (the rest fold into "_other").
import t from 'tap';
import { waitFor } from '../helpers/wait-for.js';
import { adminFetch, provisionTenant, startWharf, tenantCaller } from '../helpers/wharf.js';

const RESOURCE_FAMILY = /^(wharf_(topic|group)_[a-z_]+)\{([^}]*)\} (\S+)$/;

t.test('resource series per tenant are capped; the overflow is summed into _other', async (t) => {
  const cap = 4;
  const wharf = await startWharf(t, {
    config: { statsSampleIntervalMs: 100, maxStatsSeriesPerTenant: cap },
  });
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  for (const topic of ['a', 'b', 'c', 'd'])
    await call('PUT', `/topics/${topic}`, { messageType: 'NORMAL' });
  for (const group of ['g1', 'g2']) await call('PUT', `/groups/${group}`, {});
  // the groups receive from a, b and c (nothing there yet), never from d: a pair is sampled
  // once its group has received from its topic (not every topic × every group of an instance)
  for (const topic of ['a', 'b', 'c'])
    for (const group of ['g1', 'g2'])
      await call('POST', `/topics/${topic}/groups/${group}/receive`, { waitSeconds: 0 });
  // 4 topics + 6 pairs = 10 series for this tenant: 4 labelled, 6 folded
  for (const topic of ['a', 'b', 'c', 'd']) {
    await call('POST', `/topics/${topic}/messages`, { messages: [{ body: 'x' }, { body: 'y' }] });
  }
  const scrape = async () => (await adminFetch(wharf, 'GET', '/metrics')).text();
  /** This tenant's series (label sets) and the _other figures, from one scrape. */
  const read = (text: string) => {
    const series = new Set<string>();
    let otherBacklog = 0;
    let otherMessages = 0;
    for (const line of text.split('\n')) {
      const m = RESOURCE_FAMILY.exec(line);
      if (m === null || !m[3].includes(`tenant="${tenant.tenantId}"`)) continue;
      // one series = one label set (a topic's or a pair's, over all its families)
      series.add(m[3]);
      if (m[1] === 'wharf_group_backlog' && m[3].includes('group="_other"'))
        otherBacklog = Number(m[4]);
      if (m[1] === 'wharf_topic_messages_in' && m[3].includes('topic="_other"'))
        otherMessages = Number(m[4]);
    }
    return { text, series, otherBacklog, otherMessages };
  };
  // a sample taken after every publish: topic c and the folded pairs hold their messages
  const { text, series, otherBacklog, otherMessages } = await waitFor(
    'a sample of every resource after the publishes',
    async () => {
      const sample = read(await scrape());
      return sample.text.includes(`wharf_stats_folded_series{tenant="${tenant.tenantId}"} 6`) &&
        sample.otherMessages === 4 &&
        sample.otherBacklog === 8
        ? sample
        : null;
    },
  );
  const labelled = [...series].filter((s) => !s.includes('"_other"'));
  t.equal(labelled.length, cap, 'labelled series of the tenant: the cap');
  t.equal(series.size, cap + 2, 'plus one _other topic series and one _other group series');
  t.ok(series.has(`tenant="${tenant.tenantId}",instance="_other",topic="_other",group="_other"`));
  // labelled: a, (a,g1), (a,g2), b; folded: (b,g1), (b,g2), c, (c,g1), (c,g2), d
  t.equal(otherMessages, 4, 'topics c and d');
  t.equal(otherBacklog, 8, 'the backlog of the four folded pairs, 2 each');
  t.match(text, /wharf_http_request_duration_seconds_bucket\{[^}]*status_class="2xx"/);
  t.match(text, /wharf_redis_round_trip_seconds \d/);
  t.match(text, /# TYPE wharf_webhook_deliveries_total counter/);
  t.match(text, /# TYPE wharf_store_fdatasync_seconds histogram/);
});
