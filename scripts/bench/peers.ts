// `npm run bench:peers [-- --messages N --rate R --duration-s S --runs K --peers a,b --json F]`:
// measures the systems a user would pick instead of Wharf on this machine (RabbitMQ quorum and
// classic queues, NATS JetStream, Redis Streams), each run in a fresh load process, runs
// interleaved across peers so machine noise spreads evenly, and prints one table of medians.
// A peer that does not answer prints "unavailable" in its row; the others still run. Before each
// run it waits (up to --quiet-wait-s, 0 to skip) for the machine to be under --quiet-pct CPU.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runComparison } from './lib/comparison.js';
import type { MeasurePlan } from './lib/measure-driver.js';
import { PEERS } from './peers/catalog.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '5000' },
    'duration-s': { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    'body-bytes': { type: 'string', default: '1024' },
    batch: { type: 'string', default: '32' },
    window: { type: 'string' },
    peers: { type: 'string', default: PEERS.map((peer) => peer.id).join(',') },
    json: { type: 'string' },
    'quiet-wait-s': { type: 'string', default: '30' },
    'quiet-pct': { type: 'string', default: '30' },
  },
  strict: true,
});

function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

const plan: MeasurePlan = {
  messages: Math.round(positive('messages', values.messages)),
  bodyBytes: Math.round(positive('body-bytes', values['body-bytes'])),
  batch: Math.round(positive('batch', values.batch)),
  ratePerSec: positive('rate', values.rate),
  durationMs: positive('duration-s', values['duration-s']) * 1000,
};
if (values.window !== undefined) plan.window = Math.round(positive('window', values.window));
const runs = Math.round(positive('runs', values.runs));
const quietWaitMs = Number(values['quiet-wait-s']) * 1000;
const quietPct = positive('quiet-pct', values['quiet-pct']);
const wanted = new Set(values.peers.split(',').map((id) => id.trim()));
const unknown = [...wanted].filter((id) => !PEERS.some((peer) => peer.id === id));
if (unknown.length > 0) {
  throw new Error(
    `unknown peer ${unknown.join(', ')}; known: ${PEERS.map((p) => p.id).join(', ')}`,
  );
}
const result = await runComparison({
  entries: PEERS.filter((peer) => wanted.has(peer.id)),
  plan,
  runs,
  quietWaitMs,
  quietPct,
  baselineId: 'rabbitmq-quorum',
  ratioHeader: 'vs quorum',
  ratioNote:
    'Ratios against the RabbitMQ quorum queue (the like-for-like durable peer; classic queues only beside it).',
});
process.stdout.write(
  `\n${result.table}\n\n${result.notes.map((note) => `- ${note}`).join('\n')}\n`,
);
if (values.json !== undefined)
  writeFileSync(values.json, `${JSON.stringify(result.json, null, 2)}\n`);
