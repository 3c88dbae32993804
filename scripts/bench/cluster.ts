// Cluster transport benchmark (issue #11): what the network hop between gateway and broker costs.
// The same load — publish batches of 32 × 1 KiB with N calls in flight, then receive+ack drains —
// runs against the broker in process (the all-in-one yardstick), and through TCP frames and
// HTTP/2 to a broker server in a child process. msg/s, CPU µs per message of the load process
// and of the broker process, and the ratio against in-process. Modes run interleaved, R rounds.
//   npm run bench:cluster [-- --seconds 3 --rounds 2 --inflight 16 --consumers 8 --flush sync]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker } from '../../src/broker/index.js';
import {
  Http2BrokerServer,
  TcpBrokerServer,
  http2BrokerClient,
  inProcessBrokerClient,
  tcpBrokerClient,
  type BrokerClient,
} from '../../src/cluster/index.js';
import type { GroupDescriptor, PublishMessage, TopicDescriptor } from '../../src/model/index.js';
import { formatCount, formatFixed, formatRatio, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}
const SECONDS = Number(flag('seconds', '3'));
const ROUNDS = Number(flag('rounds', '2'));
const IN_FLIGHT = Number(flag('inflight', '16'));
const CONSUMERS = Number(flag('consumers', '8'));
const FLUSH = flag('flush', 'sync') === 'async' ? 'async' : 'sync';
const BATCH = 32;
const BODY_BYTES = 1024;
const QUEUES = 8;
const ROLE = flag('role', 'main');
const MODES = ['in-process', 'tcp', 'http2'] as const;
type Mode = (typeof MODES)[number];

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

const group: GroupDescriptor = {
  tenantId: 'bench',
  instanceId: 'bench',
  group: 'drain',
  deliveryMode: 'CLUSTERING',
  maxDeliveryAttempts: 16,
  invisibleSeconds: 60,
  createdAt: topic.createdAt,
};

function openBroker(dir: string): Promise<Broker> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return Broker.open({
    dataDir: dir,
    brokerId: 0,
    macKey: Buffer.alloc(32, 7),
    store: { flushPolicy: FLUSH, segmentBytes: 256 * 1024 * 1024 },
  });
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

interface Phase {
  messages: number;
  seconds: number;
  cpuMicros: number;
}

async function publishPhase(client: BrokerClient): Promise<Phase> {
  const body = Buffer.alloc(BODY_BYTES, 'w');
  const batch: PublishMessage[] = Array.from({ length: BATCH }, () => ({
    body,
    bodyEncoding: 'base64',
    tag: 'TagA',
  }));
  let count = 0;
  let stop = false;
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  const timer = setTimeout(() => (stop = true), SECONDS * 1000);
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (!stop) {
        const results = await client.publish(topic, batch);
        count += results.length;
      }
    }),
  );
  clearTimeout(timer);
  return {
    messages: count,
    seconds: (performance.now() - t0) / 1000,
    cpuMicros: cpuMicros() - cpu0,
  };
}

async function drainPhase(client: BrokerClient, total: number): Promise<Phase> {
  let acked = 0;
  const cpu0 = cpuMicros();
  const t0 = performance.now();
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
  return {
    messages: acked,
    seconds: (performance.now() - t0) / 1000,
    cpuMicros: cpuMicros() - cpu0,
  };
}

// ---- child processes: commands over IPC, one answer per command ----

type Request =
  { cmd: 'publish' } | { cmd: 'drain'; total: number } | { cmd: 'cpu' } | { cmd: 'stop' };
type Command = Request & { id: number };

function serve(handle: (command: Command) => Promise<unknown>): void {
  process.on('message', (message: Command) => {
    handle(message).then(
      (value) => process.send?.({ id: message.id, value }),
      (error: unknown) => process.send?.({ id: message.id, error: String(error) }),
    );
  });
}

/** A broker behind a transport server; answers its CPU time when asked. */
async function serverRole(): Promise<void> {
  const broker = await openBroker(flag('dir', ''));
  const server =
    flag('transport', 'tcp') === 'tcp'
      ? new TcpBrokerServer(broker)
      : new Http2BrokerServer(broker);
  const { port } = await server.start();
  serve(async (command) => {
    if (command.cmd === 'cpu') return cpuMicros();
    await server.close();
    await broker.close();
    setImmediate(() => process.exit(0));
    return null;
  });
  process.send?.({ id: 0, value: port });
}

/** The load: through a network client, or against a broker in this very process. */
async function loadRole(): Promise<void> {
  const transport = flag('transport', 'in-process');
  const port = Number(flag('port', '0'));
  const broker = transport === 'in-process' ? await openBroker(flag('dir', '')) : null;
  const client =
    broker !== null
      ? inProcessBrokerClient(broker)
      : transport === 'tcp'
        ? tcpBrokerClient({ host: '127.0.0.1', port })
        : http2BrokerClient({ host: '127.0.0.1', port });
  serve(async (command) => {
    if (command.cmd === 'publish') return publishPhase(client);
    if (command.cmd === 'drain') return drainPhase(client, command.total);
    if (command.cmd === 'cpu') return cpuMicros();
    await client.close();
    setImmediate(() => process.exit(0));
    return null;
  });
  process.send?.({ id: 0, value: 'ready' });
}

// ---- the orchestrator ----

class Child {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    (message: { value?: unknown; error?: string }) => void
  >();
  readonly ready: Promise<unknown>;

  constructor(private readonly child: ChildProcess) {
    this.ready = new Promise((resolve) => this.waiting.set(0, (m) => resolve(m.value)));
    child.on('message', (message: { id: number; value?: unknown; error?: string }) => {
      const resolve = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      resolve?.(message);
    });
  }

  static spawn(roleArgs: string[]): Child {
    const child = fork(fileURLToPath(import.meta.url), [...args, ...roleArgs], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Child(child);
  }

  ask<T>(command: Request): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (m) =>
        m.error !== undefined ? reject(new Error(m.error)) : resolve(m.value as T),
      );
      this.child.send({ ...command, id });
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.ask({ cmd: 'stop' });
    await exited;
  }
}

interface Row {
  mode: Mode;
  round: number;
  publish: Phase;
  publishServerCpu: number;
  drain: Phase;
  drainServerCpu: number;
}

async function runMode(mode: Mode, round: number, root: string): Promise<Row> {
  const dir = join(root, `${mode}-${round}`);
  let server: Child | null = null;
  let port = 0;
  if (mode !== 'in-process') {
    server = Child.spawn(['--role', 'server', '--transport', mode, '--dir', dir]);
    port = Number(await server.ready);
  }
  const load = Child.spawn([
    '--role',
    'load',
    '--transport',
    mode,
    '--port',
    String(port),
    '--dir',
    dir,
  ]);
  await load.ready;
  const serverCpu = async (): Promise<number> =>
    server === null ? 0 : server.ask<number>({ cmd: 'cpu' });
  const s0 = await serverCpu();
  const publish = await load.ask<Phase>({ cmd: 'publish' });
  const s1 = await serverCpu();
  const drain = await load.ask<Phase>({ cmd: 'drain', total: publish.messages });
  const s2 = await serverCpu();
  await load.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
  return { mode, round, publish, publishServerCpu: s1 - s0, drain, drainServerCpu: s2 - s1 };
}

async function main(): Promise<void> {
  const root = join(
    process.env.WHARF_BENCH_DIR ?? join(tmpdir(), 'wharf-bench'),
    `cluster-${process.pid}`,
  );
  console.log(
    `# Wharf cluster transport benchmark — ${IN_FLIGHT} publish calls in flight × batches of ` +
      `${BATCH} × ${BODY_BYTES} B for ${SECONDS} s (flush ${FLUSH}), then ${CONSUMERS} consumers ` +
      `receive+ack it all; ${ROUNDS} rounds, modes interleaved. Load and broker are separate ` +
      `processes for tcp and http2; in-process is the all-in-one yardstick (one process).\n` +
      `# Figures are under load: 2 cores shared with other work — compare within a round.\n`,
  );
  const rows: Row[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? MODES : [...MODES].reverse();
    for (const mode of order) rows.push(await runMode(mode, round, root));
  }
  rmSync(root, { recursive: true, force: true });
  const base = (round: number): Row | undefined =>
    rows.find((r) => r.round === round && r.mode === 'in-process');
  const perMessage = (micros: number, messages: number): string =>
    formatFixed(micros / messages, 1);
  console.log(
    formatTable(
      [
        { header: 'round' },
        { header: 'transport' },
        { header: 'publish msg/s', align: 'right' },
        { header: 'vs in-process', align: 'right' },
        { header: 'client µs/msg', align: 'right' },
        { header: 'broker µs/msg', align: 'right' },
        { header: 'receive+ack msg/s', align: 'right' },
        { header: 'vs in-process', align: 'right' },
        { header: 'client µs/msg', align: 'right' },
        { header: 'broker µs/msg', align: 'right' },
      ],
      rows.map((r) => {
        const publishRate = r.publish.messages / r.publish.seconds;
        const drainRate = r.drain.messages / r.drain.seconds;
        const b = base(r.round);
        return [
          String(r.round),
          r.mode,
          formatCount(publishRate),
          formatRatio(publishRate, b && b.publish.messages / b.publish.seconds),
          perMessage(r.publish.cpuMicros, r.publish.messages),
          r.mode === 'in-process' ? '(same)' : perMessage(r.publishServerCpu, r.publish.messages),
          formatCount(drainRate),
          formatRatio(drainRate, b && b.drain.messages / b.drain.seconds),
          perMessage(r.drain.cpuMicros, r.drain.messages),
          r.mode === 'in-process' ? '(same)' : perMessage(r.drainServerCpu, r.drain.messages),
        ];
      }),
    ),
  );
}

if (ROLE === 'server') await serverRole();
else if (ROLE === 'load') await loadRole();
else await main();
