import t from 'tap';
import type { DriverMeasurement } from '../../../scripts/bench/lib/measure-driver.js';
import {
  boundBy,
  formatMessagesPerSync,
  formatPeerTable,
  summarizeRuns,
} from '../../../scripts/bench/lib/peer-table.js';

function run(
  publish: number,
  consume: number,
  p99: number,
  maxMs: number,
  received = 100,
  serverSyncs: number | null = 1,
): DriverMeasurement {
  const cpu = { serverPct: 50, clientPct: 95, machinePct: 160 };
  return {
    name: 'Peer',
    mode: 'mode',
    durable: 'yes',
    publish: { messages: 10, elapsedMs: 1, msgPerSec: publish, cpu, serverSyncs },
    consume: { messages: 10, elapsedMs: 1, msgPerSec: consume, cpu, serverSyncs: null },
    latency: {
      count: received,
      p50Ms: 1,
      p99Ms: p99,
      maxMs,
      meanMs: 1,
      ratePerSec: 5000,
      sent: 100,
      sendLagP50Ms: 0,
      sendLagP99Ms: 0,
      cpu,
      serverSyncs: null,
    },
  };
}

t.test('runs summarize to medians, with the worst max and the worst loss', async (t) => {
  const summary = summarizeRuns([run(10, 30, 5, 9), run(30, 10, 7, 40, 97), run(20, 20, 6, 12)]);
  t.equal(summary.runs, 3);
  t.equal(summary.publishMsgPerSec, 20);
  t.equal(summary.consumeMsgPerSec, 20);
  t.equal(summary.p99Ms, 6);
  t.equal(summary.maxMs, 40);
  t.equal(summary.lost, 3);
  t.same(summary.publishCpu, { serverPct: 50, clientPct: 95, otherPct: 15 });
  t.equal(summary.publishSyncsPerMsg, 0.1, 'one sync per 10 messages');
});

t.test('phases a run skipped stay missing', async (t) => {
  const summary = summarizeRuns([{ name: 'x', mode: 'm', durable: 'no' }]);
  t.ok(Number.isNaN(summary.publishMsgPerSec));
  t.ok(Number.isNaN(summary.maxMs));
  t.equal(summary.lost, 0);
  t.ok(Number.isNaN(summary.latencyCpu.serverPct));
  t.ok(Number.isNaN(summary.publishSyncsPerMsg));
});

t.test('the side near a full core bounds a phase', async (t) => {
  t.equal(boundBy({ serverPct: 40, clientPct: 98, otherPct: 0 }), 'client');
  t.equal(boundBy({ serverPct: 110, clientPct: 90, otherPct: 0 }), 'server');
  t.equal(boundBy({ serverPct: 60, clientPct: 30, otherPct: 0 }), '—');
  t.equal(
    boundBy({ serverPct: Number.NaN, clientPct: 95, otherPct: 0 }),
    'client',
    'server unmeasured',
  );
});

t.test('messages per sync: a count, "no syncs", or a dash', async (t) => {
  t.equal(formatMessagesPerSync(0.1), '10');
  t.equal(formatMessagesPerSync(1 / 28.4), '28');
  t.equal(formatMessagesPerSync(0), 'no syncs');
  t.equal(formatMessagesPerSync(Number.NaN), '—');
});

t.test('the table sets each row against the baseline and keeps unavailable rows', async (t) => {
  const table = formatPeerTable(
    [
      {
        peer: 'RabbitMQ',
        mode: 'quorum',
        durable: 'yes',
        summary: summarizeRuns([run(25000, 55000, 6, 9)]),
      },
      {
        peer: 'Redis',
        mode: 'streams',
        durable: 'no',
        summary: summarizeRuns([run(75000, 165000, 4, 8, 98, 0)]),
      },
      {
        peer: 'NATS',
        mode: 'jetstream',
        durable: 'no',
        summary: null,
        status: 'unavailable (refused)',
      },
      {
        peer: 'Flaky',
        mode: 'm',
        durable: 'no',
        summary: summarizeRuns([run(1, 1, 1, 1)]),
        status: '2 failed: boom',
      },
    ],
    { baseline: 0, ratioHeader: 'vs quorum', ratePerSec: 5000 },
  );
  const lines = table.split('\n');
  t.equal(lines.length, 6);
  t.match(lines[0], /\| peer +\| mode .*\| vs quorum \|.*p50 ms @5,000\/s/);
  t.match(lines[2], /RabbitMQ .*\| +25,000 \| +1\.00× \| +55,000 \| +1\.00× \|/);
  t.match(lines[3], /Redis .*\| +75,000 \| +3\.00× \| +165,000 \| +3\.00× \|.*4\.00 \(2 lost\)/);
  t.match(lines[2], /\| +10 \| +50% \/ 50% \|/, 'messages per sync');
  t.match(lines[3], /no syncs \| +50% \/ 50% .* 95% \/ 95% \| client/);
  t.match(lines[4], /NATS .*\| unavailable \(refused\)/);
  t.match(lines[5], /\| 1 \(2 failed: boom\) \|$/);
});
