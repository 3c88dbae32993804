// `npm run bench:peers [-- --messages N --rate R --duration-s S --runs K --peers a,b --json F]`:
// measures the systems a user would pick instead of Wharf on this machine (RabbitMQ quorum and
// classic queues, NATS JetStream, Redis Streams), each run in a fresh load process, runs
// interleaved across peers so machine noise spreads evenly, and prints one table of medians.
// A peer that does not answer prints "unavailable" in its row; the others still run. Before each
// run it waits (up to --quiet-wait-s, 0 to skip) for the machine to be under --quiet-pct CPU.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runComparison } from './lib/comparison.js';
import { parsePlan, planOptions } from './lib/plan-args.js';
import { PEERS } from './peers/catalog.js';

const { values } = parseArgs({
  options: planOptions(PEERS.map((peer) => peer.id).join(',')),
  strict: true,
});
const { plan, runs, warmupMessages, quietWaitMs, quietPct, rows: wanted } = parsePlan(values);
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
  warmupMessages,
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
