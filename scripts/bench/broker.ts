// Broker benchmark (issue #9): the broker in process, behind the BrokerClient interface the
// gateway uses, without HTTP — publish batches, then receive+ack drains, with trace on and off and
// with 16-byte and 1 KiB bodies. It says what the broker itself costs per message, so a change to
// the consume path is measured apart from the gateway's pipeline.
//   npm run bench:broker [-- --seconds 3 --publishers 16 --consumers 8 --batch 32 --flush sync]
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import type { BrokerClient } from '../../src/cluster/index.js';
import type { GroupDescriptor, PublishMessage, TopicDescriptor } from '../../src/model/index.js';
import { inProcessBrokerClient } from '../../src/cluster/index.js';
import { formatCount, formatRatio, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const SECONDS = flag('seconds', 3);
const PUBLISHERS = flag('publishers', 16);
const CONSUMERS = flag('consumers', 8);
const BATCH = flag('batch', 32);
const QUEUES = 8;
const FLUSH =
  args.includes('--flush') && args[args.indexOf('--flush') + 1] === 'async' ? 'async' : 'sync';
const root = join(
  process.env.WHARF_BENCH_DIR ?? join(tmpdir(), 'wharf-bench'),
  `broker-${process.pid}`,
);

interface Case {
  trace: boolean;
  bodyBytes: number;
}

interface Result extends Case {
  publishPerSec: number;
  published: number;
  drainPerSec: number;
  drained: number;
}

const topic: TopicDescriptor = {
  tenantId: 'bench',
  instanceId: 'bench',
  topic: 'bench',
  messageType: 'NORMAL',
  queueCount: QUEUES,
  retentionHours: 72,
  dedupWindowMs: 600_000,
  createdAt: Date.now() - 1000,
};

function groupFor(name: string): GroupDescriptor {
  return {
    tenantId: 'bench',
    instanceId: 'bench',
    group: name,
    deliveryMode: 'CLUSTERING',
    maxDeliveryAttempts: 16,
    invisibleSeconds: 60,
    // a group reads a topic from its creation on: this one was "created" with the topic
    createdAt: topic.createdAt,
  };
}

/** Publishers send batches for `SECONDS`; every message it acknowledged counts. */
async function publishFor(
  client: BrokerClient,
  bodyBytes: number,
  seconds: number,
): Promise<number> {
  const body = Buffer.alloc(bodyBytes, 'w');
  const batch: PublishMessage[] = Array.from({ length: BATCH }, () => ({
    body,
    bodyEncoding: 'base64',
    tag: 'TagA',
  }));
  let count = 0;
  let stop = false;
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(
    Array.from({ length: PUBLISHERS }, async () => {
      while (!stop) {
        // not `count += await …`: that reads `count` before the await and loses updates
        const results = await client.publish(topic, batch);
        count += results.length;
      }
    }),
  );
  clearTimeout(timer);
  return count;
}

/** Consumers receive and ack until `total` messages were acked. */
async function drain(client: BrokerClient, group: GroupDescriptor, total: number): Promise<void> {
  let acked = 0;
  await Promise.all(
    Array.from({ length: CONSUMERS }, async (_, c) => {
      while (acked < total) {
        const received = await client.receive(topic, group, {
          maxMessages: BATCH,
          waitMs: 200,
          tags: '*',
          consumerId: `c${c}`,
        });
        if (received.length === 0) continue;
        const results = await client.ack(
          topic,
          group,
          received.map((m) => m.receiptHandle),
        );
        acked += results.filter((r) => r.ok).length;
      }
    }),
  );
}

async function run(c: Case, seconds = SECONDS): Promise<Result> {
  const dir = join(root, `trace-${c.trace}-${c.bodyBytes}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const broker = await Broker.open({
    dataDir: dir,
    brokerId: 0,
    macKey: Buffer.alloc(32, 7),
    trace: c.trace,
    store: { flushPolicy: FLUSH, segmentBytes: 256 * 1024 * 1024 },
  });
  const client = inProcessBrokerClient(broker);
  try {
    const t0 = performance.now();
    const published = await publishFor(client, c.bodyBytes, seconds);
    const publishSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await drain(client, groupFor('drain'), published);
    const drainSeconds = (performance.now() - t1) / 1000;
    return {
      ...c,
      published,
      publishPerSec: published / publishSeconds,
      drained: published,
      drainPerSec: published / drainSeconds,
    };
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const cases: Case[] = [
    { trace: true, bodyBytes: 1024 },
    { trace: false, bodyBytes: 1024 },
    { trace: true, bodyBytes: 16 },
    { trace: false, bodyBytes: 16 },
  ];
  console.log(
    `# Wharf broker benchmark — in process, no HTTP; ${PUBLISHERS} publishers × batches of ${BATCH}` +
      ` for ${SECONDS} s (flush ${FLUSH}), then ${CONSUMERS} consumers receive+ack it all` +
      ` (maxMessages ${BATCH}); ${QUEUES} queues\n`,
  );
  // a first, unreported round warms the JIT and the disk, so the first case is not the slowest
  await run(cases[0], 1);
  const results: Result[] = [];
  for (const c of cases) results.push(await run(c));
  const base = (bodyBytes: number) => results.find((r) => r.trace && r.bodyBytes === bodyBytes);
  console.log(
    formatTable(
      [
        { header: 'body' },
        { header: 'trace' },
        { header: 'publish msg/s', align: 'right' },
        { header: 'vs trace on', align: 'right' },
        { header: 'receive+ack msg/s', align: 'right' },
        { header: 'vs trace on', align: 'right' },
        { header: 'messages', align: 'right' },
      ],
      results.map((r) => [
        r.bodyBytes === 1024 ? '1 KiB' : `${r.bodyBytes} B`,
        r.trace ? 'on' : 'off',
        formatCount(r.publishPerSec),
        formatRatio(r.publishPerSec, base(r.bodyBytes)?.publishPerSec),
        formatCount(r.drainPerSec),
        formatRatio(r.drainPerSec, base(r.bodyBytes)?.drainPerSec),
        formatCount(r.drained),
      ]),
    ),
  );
  rmSync(root, { recursive: true, force: true });
}

await main();
