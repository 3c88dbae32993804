import t from 'tap';
import {
  formatCount,
  formatFixed,
  formatMs,
  formatPct,
  formatRatio,
  formatTable,
} from '../../../scripts/bench/lib/table.js';

t.test('formatTable aligns columns as a Markdown table', async (t) => {
  const table = formatTable(
    [{ header: 'peer' }, { header: 'msg/s', align: 'right' }, { header: 'x', align: 'right' }],
    [
      ['RabbitMQ', '25,000', '1.00×'],
      ['Redis', '74,000', '2.96×'],
      ['NATS', 'unavailable'],
    ],
  );
  t.equal(
    table,
    [
      '| peer     |       msg/s |     x |',
      '|----------|------------:|------:|',
      '| RabbitMQ |      25,000 | 1.00× |',
      '| Redis    |      74,000 | 2.96× |',
      '| NATS     | unavailable |       |',
    ].join('\n'),
  );
});

t.test('every line of a table has the same display width', async (t) => {
  const table = formatTable(
    [{ header: 'a' }, { header: 'bb', align: 'right' }],
    [
      ['—', '1.5×'],
      ['long text here', ''],
    ],
  );
  const widths = table.split('\n').map((line) => [...line].length);
  t.equal(new Set(widths).size, 1, widths.join(','));
});

t.test('numbers: counts with separators, ms by magnitude, CPU shares', async (t) => {
  t.equal(formatCount(25312.4), '25,312');
  t.equal(formatCount(0), '0');
  t.equal(formatMs(1.934), '1.93');
  t.equal(formatMs(12.34), '12.3');
  t.equal(formatMs(123.4), '123');
  t.equal(formatPct(93.4), '93%');
  t.equal(formatFixed(1234.5, 1), '1,234.5');
  t.equal(formatFixed(2, 2), '2.00');
  t.equal(formatFixed(Number.NaN), '—');
});

t.test('a missing figure prints as a dash, never as zero', async (t) => {
  for (const missing of [Number.NaN, null, undefined, Number.POSITIVE_INFINITY]) {
    t.equal(formatCount(missing), '—');
    t.equal(formatMs(missing), '—');
    t.equal(formatPct(missing), '—');
    t.equal(formatRatio(missing, 1), '—');
    t.equal(formatRatio(1, missing), '—');
  }
});

t.test('ratio against a baseline', async (t) => {
  t.equal(formatRatio(50, 25), '2.00×');
  t.equal(formatRatio(13, 25), '0.52×');
  t.equal(formatRatio(300, 25), '12.0×');
  t.equal(formatRatio(1, 0), '—', 'a zero baseline has no ratio');
});
