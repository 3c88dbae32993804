// `npm run bench:calls [-- --rate 1000 --seconds 8 --body-bytes 1024 --rows a,b --wharf-node-args F]`: what one call costs the
// server when calls arrive one at a time on a fixed schedule, as in a latency run at low rates
// (bench:gateway measures calls arriving together, many per wake-up of the event loop). The
// all-in-one node runs as its own process (sync flush); this process sends the calls, signed with
// SigV4 (signed once and replayed where the body never changes), and reads the node's CPU time
// from /proc before and after each row (after a 3 s warm-up at the same rate); the first row is
// the node idle for as long, and "above idle" takes that share out of each row. Rows: GET /healthz
// (no authentication), a signed GET of the topic list, a publish of one message, an empty receive
// (waitSeconds 0), and a publish of one message while 4 receivers long-poll and ack what they get
// (per message: its publish, its share of receives, its ack). `--rows` keeps the rows whose name
// contains one of its words (e.g. `--rows publish`); `--wharf-node-args` adds node flags to the
// node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where a call's CPU goes).
import http from 'node:http';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { CpuSampler } from './lib/cpu-sampler.js';
import { runOnSchedule } from './lib/pacer.js';
import { formatCount, formatFixed, formatPct, formatTable } from './lib/table.js';
import { provisionTenant, startWharf } from './lib/wharf-node.js';
import { sendRequest } from './e2e/replayable-request.js';
import { SignedClient } from './e2e/signed-client.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '8' },
    'body-bytes': { type: 'string', default: '1024' },
    rows: { type: 'string', default: '' },
    'wharf-node-args': { type: 'string', default: '' },
  },
  strict: true,
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const BODY_BYTES = Number(values['body-bytes']);
const WARMUP_MS = 3000;
const RECEIVERS = 4;
const ROWS = values.rows.split(',').filter((word) => word !== '');
const NODE_ARGS = values['wharf-node-args'].split(' ').filter((arg) => arg !== '');
if (!(RATE > 0 && SECONDS > 0 && BODY_BYTES > 0))
  throw new Error('--rate, --seconds and --body-bytes must be positive');

interface ReceiveAnswer {
  messages?: { receiptHandle: string }[];
}

const wharf = await startWharf([...NODE_FLAGS, ...NODE_ARGS]);
try {
  const tenant = await provisionTenant(wharf);
  const client = new SignedClient({
    url: wharf.url,
    accessKeyId: tenant.accessKeyId,
    accessKeySecret: tenant.accessKeySecret,
    region: 'local',
    maxSockets: 64,
  });
  const base = `/v1/instances/${tenant.instanceId}`;
  const plain = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(wharf.url);
  await client.ok('PUT', `${base}/topics/calls`, { messageType: 'NORMAL', queueCount: 8 });
  await client.ok('PUT', `${base}/groups/calls`, { invisibleSeconds: 60 });
  const group = `${base}/topics/calls/groups/calls`;
  const body = 'a'.repeat(BODY_BYTES);
  const failures: Error[] = [];
  const fire = (call: () => Promise<unknown>) => () => {
    call().catch((error: Error) => failures.push(error));
  };
  const publish = () =>
    client.ok('POST', `${base}/topics/calls/messages`, { messages: [{ body }] });

  /** Receivers that long-poll and ack until stopped; resolves once they all stopped. */
  const receivers = (): (() => Promise<void>) => {
    let stopped = false;
    const loops = Array.from({ length: RECEIVERS }, async () => {
      while (!stopped) {
        const answer = (await client.ok(
          'POST',
          `${group}/receive`,
          { maxMessages: 32, waitSeconds: 1 },
          'receive-wait',
        )) as ReceiveAnswer;
        const handles = (answer.messages ?? []).map((m) => m.receiptHandle);
        if (handles.length > 0)
          await client.ok('POST', `${group}/ack`, { receiptHandles: handles });
      }
    });
    return async () => {
      stopped = true;
      await Promise.all(loops);
    };
  };

  /** The node's share of a core (%) over `run` (NaN when /proc cannot be read), with its time. */
  const cpuOver = async <T>(
    run: () => Promise<T>,
  ): Promise<{ pct: number; elapsedMs: number; value: T }> => {
    const sampler = CpuSampler.start(wharf.pid);
    const t0 = performance.now();
    const value = await run();
    const elapsedMs = performance.now() - t0;
    return { pct: sampler?.stop() ?? NaN, elapsedMs, value };
  };
  // what the node spends with no calls at all (timers, samplers, the delay wheel's look at Redis)
  const idlePct = (
    await cpuOver(() => new Promise((resolve) => setTimeout(resolve, SECONDS * 1000)))
  ).pct;
  console.log(`  idle: ${formatPct(idlePct)} of a core`);

  const rows: { name: string; cpuPct: number; usPerCall: number; usAboveIdle: number }[] = [];
  const measure = async (name: string, send: () => void, withReceivers = false): Promise<void> => {
    if (ROWS.length > 0 && !ROWS.some((word) => name.includes(word))) return;
    const stop = withReceivers ? receivers() : null;
    await runOnSchedule({ ratePerSec: RATE, durationMs: WARMUP_MS, send });
    const run = await cpuOver(() =>
      runOnSchedule({ ratePerSec: RATE, durationMs: SECONDS * 1000, send }),
    );
    await stop?.();
    /** µs of server CPU per call at `pct` of a core over the row. */
    const perCall = (pct: number): number => ((pct / 100) * run.elapsedMs * 1000) / run.value.sent;
    rows.push({
      name,
      cpuPct: run.pct,
      usPerCall: perCall(run.pct),
      usAboveIdle: perCall(run.pct - idlePct),
    });
    console.log(`  ${name}: ${formatFixed(perCall(run.pct))} µs of server CPU a call`);
  };

  await measure(
    'GET /healthz (no auth)',
    fire(() => sendRequest(plain, target, { method: 'GET', path: '/healthz', headers: {} })),
  );
  await measure(
    'signed GET topic list',
    fire(() => client.ok('GET', `${base}/topics`, undefined, 'topics')),
  );
  await measure(`publish 1 × ${BODY_BYTES} B`, fire(publish));
  await measure(
    'empty receive (waitSeconds 0)',
    fire(() =>
      client.ok('POST', `${group}/receive`, { maxMessages: 32, waitSeconds: 0 }, 'receive-now'),
    ),
  );
  await measure(`publish 1 + ${RECEIVERS} receivers acking (per message)`, fire(publish), true);
  client.close();
  plain.destroy();
  if (failures.length > 0)
    throw new Error(`${failures.length} calls failed, the first: ${failures[0].message}`);

  console.log(
    `\n# Server CPU per call, calls paced one at a time at ${formatCount(RATE)}/s for ${SECONDS} s ` +
      `(after ${WARMUP_MS / 1000} s at the same rate); the all-in-one node, sync flush.\n`,
  );
  console.log(
    formatTable(
      [
        { header: 'call' },
        { header: 'server CPU', align: 'right' },
        { header: 'µs of server CPU a call', align: 'right' },
        { header: 'above idle', align: 'right' },
      ],
      [
        ['idle node (no calls)', formatPct(idlePct), '', ''],
        ...rows.map((row) => [
          row.name,
          formatPct(row.cpuPct),
          formatFixed(row.usPerCall),
          formatFixed(row.usAboveIdle),
        ]),
      ],
    ),
  );
} finally {
  await wharf.stop();
}
