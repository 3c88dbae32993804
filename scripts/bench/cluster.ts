// Cluster transport benchmark (issue #11): what the network hop between gateway and broker costs.
// The same load — publish batches of 32 × 1 KiB with N calls in flight, then receive+ack drains —
// runs against the broker in process (the all-in-one yardstick), through the thread transport to
// a broker on a worker thread of the load's process (frames over a MessagePort), and through TCP
// frames and HTTP/2 to a broker server in a child process. msg/s, CPU µs per message of the load process
// and of the broker process, and the ratio against in-process. Modes run interleaved, R rounds.
// `npm run bench:cluster` runs it with its defaults (then the shapes bench); with options:
//   npm run build && node dist/scripts/bench/cluster.js [--seconds 3 --warmup-seconds 2 --rounds 2 --inflight 16 --consumers 8 --flush sync
//                          --modes thread,tcp,http2]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import {
  MessageChannel,
  Worker,
  isMainThread,
  workerData,
  type MessagePort,
} from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker } from '../../src/broker/index.js';
import {
  Http2BrokerServer,
  NetworkBrokerClient,
  PortBrokerServer,
  PortRpcChannel,
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
/** An unreported publish and drain first in every mode's processes (JIT, caches, files). */
const WARMUP_SECONDS = Number(flag('warmup-seconds', '2'));
const ROUNDS = Number(flag('rounds', '2'));
const IN_FLIGHT = Number(flag('inflight', '16'));
const CONSUMERS = Number(flag('consumers', '8'));
const FLUSH = flag('flush', 'sync') === 'async' ? 'async' : 'sync';
const BATCH = 32;
const BODY_BYTES = 1024;
const QUEUES = 8;
const ROLE = flag('role', 'main');
const ALL_MODES = ['in-process', 'thread', 'tcp', 'http2'] as const;
type Mode = (typeof ALL_MODES)[number];
const isMode = (name: string): name is Mode => (ALL_MODES as readonly string[]).includes(name);
/** `--modes thread,tcp` runs only those (in-process always runs: the ratios are against it). */
const MODES: Mode[] = [
  'in-process',
  ...flag('modes', ALL_MODES.join(','))
    .split(',')
    .filter((name) => isMode(name) && name !== 'in-process')
    .filter((name, i, all) => all.indexOf(name) === i),
].filter(isMode);

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

async function publishPhase(client: BrokerClient, seconds: number): Promise<Phase> {
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
  const timer = setTimeout(() => (stop = true), seconds * 1000);
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
  | { cmd: 'publish'; seconds: number }
  | { cmd: 'drain'; total: number }
  | { cmd: 'cpu' }
  | { cmd: 'stop' };
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

interface BrokerThreadData {
  dir: string;
  port: MessagePort;
}

/** A broker on a worker thread of the load process, serving the port it was given. */
async function brokerThread({ dir, port }: BrokerThreadData): Promise<void> {
  const broker = await openBroker(dir);
  const server = new PortBrokerServer(broker, port);
  port.once('close', () => {
    // process.exit on a worker thread ends the thread, not the process
    // a failed close still ends the thread (the load waits for its exit), saying why
    void server
      .close()
      .then(() => broker.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error('broker thread: close failed', error);
          process.exit(1);
        },
      );
  });
}

/** The broker behind the load's client in thread mode: a worker thread and its channel. */
function startBrokerThread(dir: string): { port: MessagePort; worker: Worker } {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(fileURLToPath(import.meta.url), {
    argv: args,
    workerData: { dir, port: port2 } satisfies BrokerThreadData,
    transferList: [port2],
  });
  return { port: port1, worker };
}

/** The load: through a network client, a broker thread, or a broker in this very thread. */
async function loadRole(): Promise<void> {
  const transport = flag('transport', 'in-process');
  const port = Number(flag('port', '0'));
  const broker = transport === 'in-process' ? await openBroker(flag('dir', '')) : null;
  const thread = transport === 'thread' ? startBrokerThread(flag('dir', '')) : null;
  const client =
    broker !== null
      ? inProcessBrokerClient(broker)
      : thread !== null
        ? new NetworkBrokerClient(new PortRpcChannel(thread.port))
        : transport === 'tcp'
          ? tcpBrokerClient({ host: '127.0.0.1', port })
          : http2BrokerClient({ host: '127.0.0.1', port });
  if (thread !== null) await client.health(); // the broker thread has opened its store
  serve(async (command) => {
    if (command.cmd === 'publish') return publishPhase(client, command.seconds);
    if (command.cmd === 'drain') return drainPhase(client, command.total);
    if (command.cmd === 'cpu') return cpuMicros();
    await client.close();
    if (thread !== null) await new Promise((resolve) => thread.worker.once('exit', resolve));
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
  if (mode === 'tcp' || mode === 'http2') {
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
  if (WARMUP_SECONDS > 0) {
    const warmup = await load.ask<Phase>({ cmd: 'publish', seconds: WARMUP_SECONDS });
    await load.ask<Phase>({ cmd: 'drain', total: warmup.messages });
  }
  const s0 = await serverCpu();
  const publish = await load.ask<Phase>({ cmd: 'publish', seconds: SECONDS });
  const s1 = await serverCpu();
  const drain = await load.ask<Phase>({ cmd: 'drain', total: publish.messages });
  const s2 = await serverCpu();
  await load.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
  return { mode, round, publish, publishServerCpu: s1 - s0, drain, drainServerCpu: s2 - s1 };
}

/** Modes whose broker runs in the load's process: its CPU is counted with the load's. */
const oneProcess = (mode: Mode): boolean => mode === 'in-process' || mode === 'thread';

async function main(): Promise<void> {
  const root = join(
    process.env.WHARF_BENCH_DIR ?? join(tmpdir(), 'wharf-bench'),
    `cluster-${process.pid}`,
  );
  console.log(
    `# Wharf cluster transport benchmark — ${IN_FLIGHT} publish calls in flight × batches of ` +
      `${BATCH} × ${BODY_BYTES} B for ${SECONDS} s (flush ${FLUSH}), then ${CONSUMERS} consumers ` +
      `receive+ack it all, after an unreported ${WARMUP_SECONDS} s warm-up of each; ${ROUNDS} rounds, modes interleaved. Load and broker are separate ` +
      `processes for tcp and http2, threads of one process for thread; in-process is the ` +
      `all-in-one yardstick (one thread).\n` +
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
          oneProcess(r.mode) ? '(same)' : perMessage(r.publishServerCpu, r.publish.messages),
          formatCount(drainRate),
          formatRatio(drainRate, b && b.drain.messages / b.drain.seconds),
          perMessage(r.drain.cpuMicros, r.drain.messages),
          oneProcess(r.mode) ? '(same)' : perMessage(r.drainServerCpu, r.drain.messages),
        ];
      }),
    ),
  );
}

if (!isMainThread) await brokerThread(workerData as BrokerThreadData);
else if (ROLE === 'server') await serverRole();
else if (ROLE === 'load') await loadRole();
else await main();
