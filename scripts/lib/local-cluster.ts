// A local Wharf cluster as child processes: a private Redis, brokers and gateways, each a real
// `wharf <role>` process on its own ports (brokers in their own data dirs). Used by
// `npm run cluster`, the cluster tests and the cluster bench. Each process's output goes to a log
// file (or is kept in memory); readiness is awaited on its /readyz, never guessed by a sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { freePort, startRedisServer, type RedisServerHandle } from '../../src/meta/index.js';

export interface LocalClusterOptions {
  /** The node command running `wharf`: e.g. [process.execPath, 'dist/src/cli/wharf.js']. */
  command: string[];
  dataDir: string;
  masterKey: string;
  adminToken: string;
  /** The first gateway's port (the next ones follow); 0: free ports. */
  gatewayPort?: number;
  /** Extra environment of every process (e.g. WHARF_FLUSH). */
  env?: NodeJS.ProcessEnv;
  /** Each process writes its output to <dataDir>/logs/<name>.log itself, so what it logs
   *  after this process is gone is kept too (else its output is kept in memory). */
  logFiles?: boolean;
  /** Start every process in a process group of its own, so a terminal's Ctrl-C reaches only
   *  the launcher, which stops them in order (`npm run cluster`). */
  ownProcessGroups?: boolean;
  /** Every process stops on its own once this one is gone, however it went (SIGKILL too;
   *  `npm run cluster`): a Wharf process gets a pipe from this one as stdin and
   *  WHARF_STOP_ON_STDIN_CLOSE, so it stops as on SIGTERM when the pipe closes; Redis gets a
   *  watchdog (below) that stops it once the last of them is gone. */
  stopWithLauncher?: boolean;
  /** How long a process may take to become ready. Default 60 s. */
  readyTimeoutMs?: number;
}

/** The Redis watchdog (`node -e`, argument: Redis's pid): once stdin ends, SIGTERM (Redis
 *  flushes its AOF), SIGKILL if it still runs 10 s later. Gone: no such process, or a zombie
 *  (no parent reaps it once the launcher is dead). */
const REDIS_WATCHDOG = `
const pid = Number(process.argv[1]);
if (!Number.isInteger(pid) || pid <= 1) process.exit(2);
const signal = (name) => {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
};
const zombie = () => {
  try {
    return /^\\d+ \\(.*\\) Z/s.test(require('node:fs').readFileSync('/proc/' + pid + '/stat', 'utf8'));
  } catch {
    return false;
  }
};
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  signal('SIGTERM');
  const deadline = Date.now() + 10000;
  setInterval(() => {
    if (!signal(0) || zombie()) process.exit(0);
    if (Date.now() > deadline) signal('SIGKILL');
  }, 50);
};
process.stdin.on('end', stop).on('error', stop).resume();
`;

export interface WharfProcess {
  name: string;
  role: 'broker' | 'gateway';
  child: ChildProcess;
  /** HTTP: the gateway's API, or the broker's probes. */
  url: string;
  /** Brokers: the RPC port. */
  rpcPort?: number;
  output(): string;
}

export class LocalCluster {
  redis: RedisServerHandle | undefined;
  readonly brokers = new Map<number, WharfProcess>();
  readonly gateways: WharfProcess[] = [];
  private readonly brokerPorts = new Map<number, { rpc: number; http: number }>();
  private redisPort: number | undefined;
  /** While Redis is stopped: its port, held so that no other process (a parallel test's Redis)
   *  takes it before it starts again there; each connection is closed at once, as by a Redis that
   *  is down. */
  private portHold: Server | undefined;
  /** With stopWithLauncher: the running Redis's watchdog. */
  private redisWatchdog: ChildProcess | undefined;

  constructor(readonly options: LocalClusterOptions) {}

  get redisUrl(): string {
    if (this.redis === undefined) throw new Error('redis not started');
    return this.redis.url;
  }

  /** Starts (or restarts, on the same port and files) the private Redis (AOF on). */
  async startRedis(): Promise<RedisServerHandle> {
    const dir = join(this.options.dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    const hold = this.portHold;
    this.portHold = undefined;
    if (hold !== undefined) await new Promise<void>((resolve) => hold.close(() => resolve()));
    this.redis = await startRedisServer({
      dir,
      persist: true,
      ownProcessGroup: this.options.ownProcessGroups === true,
      ...(this.redisPort === undefined ? {} : { port: this.redisPort }),
    });
    this.redisPort = this.redis.port;
    if (this.options.stopWithLauncher === true) this.watchRedis(this.redis.process);
    return this.redis;
  }

  /**
   * A process that SIGTERMs Redis once its stdin closes. The write end of that pipe is held by
   * this process and by every Wharf process started after it (their fd 3, never touched), so it
   * closes once the last of them is gone: Redis stops after the brokers and gateways that use
   * it, as in stop(). The watchdog ends when Redis exits first (a stop, an outage).
   */
  private watchRedis(redis: ChildProcess): void {
    const watchdog = spawn(process.execPath, ['-e', REDIS_WATCHDOG, String(redis.pid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: this.options.ownProcessGroups === true,
    });
    watchdog.unref();
    this.redisWatchdog = watchdog;
    const end = () => {
      watchdog.kill('SIGKILL');
      if (this.redisWatchdog === watchdog) this.redisWatchdog = undefined;
    };
    if (redis.exitCode !== null || redis.signalCode !== null) end();
    else redis.once('exit', end);
  }

  /** Stops the private Redis; `holdPort` (an outage it starts again from) keeps its port. */
  async stopRedis(options: { holdPort?: boolean } = {}): Promise<void> {
    await this.redis?.stop();
    const port = this.redisPort;
    if (port === undefined || options.holdPort !== true) return;
    const hold = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      hold.once('error', reject);
      hold.listen(port, '127.0.0.1', () => resolve());
    }).then(
      () => (this.portHold = hold),
      () => undefined, // taken already: the restart reports it
    );
  }

  private spawn(name: string, role: 'broker' | 'gateway' | 'all-in-one', env: NodeJS.ProcessEnv) {
    const [node, ...args] = this.options.command;
    let log: { path: string; fd: number; start: number } | undefined;
    if (this.options.logFiles === true) {
      const logs = join(this.options.dataDir, 'logs');
      mkdirSync(logs, { recursive: true });
      const path = join(logs, `${name}.log`);
      const fd = openSync(path, 'a');
      log = { path, fd, start: fstatSync(fd).size };
    }
    const watched = this.options.stopWithLauncher === true;
    // the Redis watchdog's pipe, held open by this process while it lives (see watchRedis)
    const redisWatch = this.redisWatchdog?.stdin;
    const child = spawn(node, [...args, role], {
      env: {
        ...process.env,
        WHARF_STOP_ON_STDIN_CLOSE: watched ? 'true' : undefined,
        WHARF_HOST: '127.0.0.1',
        WHARF_REDIS_URL: this.redisUrl,
        WHARF_MASTER_KEY: this.options.masterKey,
        WHARF_ADMIN_TOKEN: this.options.adminToken,
        WHARF_DOCS: 'false',
        ...this.options.env,
        ...env,
      },
      stdio: [
        watched ? 'pipe' : 'ignore',
        log?.fd ?? 'pipe',
        log?.fd ?? 'pipe',
        ...(redisWatch == null || redisWatch.destroyed ? [] : [redisWatch]),
      ],
      detached: this.options.ownProcessGroups === true,
    });
    if (log !== undefined) closeSync(log.fd); // the child has its own
    let text = '';
    const take = (chunk: Buffer) => {
      text = (text + chunk.toString()).slice(-200_000);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    // why a process failed to start is in its last lines: this run's, from its log file
    const output = log === undefined ? () => text : () => tail(log.path, log.start, 4_000);
    return { child, output };
  }

  private async ready(process: WharfProcess): Promise<void> {
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (process.child.exitCode !== null || process.child.signalCode !== null) {
        throw new Error(
          `${process.name} exited (${process.child.exitCode ?? process.child.signalCode}):\n` +
            process.output(),
        );
      }
      const status = await fetch(`${process.url}/readyz`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.status)
        .catch(() => 0);
      if (status === 200) return;
      if (Date.now() > deadline) throw new Error(`${process.name} not ready:\n${process.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Starts broker `id` (again on its earlier ports and data dir after a kill). */
  async startBroker(id: number, env: NodeJS.ProcessEnv = {}): Promise<WharfProcess> {
    let ports = this.brokerPorts.get(id);
    if (ports === undefined) {
      ports = { rpc: await freePort(), http: await freePort() };
      this.brokerPorts.set(id, ports);
    }
    const name = `b${id}`;
    const { child, output } = this.spawn(name, 'broker', {
      WHARF_BROKER_ID: String(id),
      WHARF_BROKER_PORT: String(ports.rpc),
      WHARF_PORT: String(ports.http),
      WHARF_DATA_DIR: join(this.options.dataDir, name),
      ...env,
    });
    const broker: WharfProcess = {
      name,
      role: 'broker',
      child,
      url: `http://127.0.0.1:${ports.http}`,
      rpcPort: ports.rpc,
      output,
    };
    this.brokers.set(id, broker);
    await this.ready(broker);
    return broker;
  }

  /** Starts broker `id` and answers once it exits (a refused start), with its output. */
  async startBrokerExpectingRefusal(id: number): Promise<{ code: number | null; output: string }> {
    const ports = { rpc: await freePort(), http: await freePort() };
    const { child, output } = this.spawn(`b${id}-second`, 'broker', {
      WHARF_BROKER_ID: String(id),
      WHARF_BROKER_PORT: String(ports.rpc),
      WHARF_PORT: String(ports.http),
      WHARF_DATA_DIR: join(this.options.dataDir, `b${id}-second`),
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, output: output() };
  }

  async startGateway(): Promise<WharfProcess> {
    const n = this.gateways.length + 1;
    const base = this.options.gatewayPort ?? 0;
    const port = base === 0 ? await freePort() : base + n - 1;
    const name = `g${n}`;
    const { child, output } = this.spawn(name, 'gateway', {
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: join(this.options.dataDir, name),
    });
    const gateway: WharfProcess = {
      name,
      role: 'gateway',
      child,
      url: `http://127.0.0.1:${port}`,
      output,
    };
    this.gateways.push(gateway);
    await this.ready(gateway);
    return gateway;
  }

  /** Starts the all-in-one node on the cluster's Redis (a yardstick for the bench). */
  async startAllInOne(): Promise<WharfProcess> {
    const port = await freePort();
    const name = 'all-in-one';
    const { child, output } = this.spawn(name, 'all-in-one', {
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: join(this.options.dataDir, name),
    });
    const node: WharfProcess = {
      name,
      role: 'gateway',
      child,
      url: `http://127.0.0.1:${port}`,
      output,
    };
    this.gateways.push(node);
    await this.ready(node);
    return node;
  }

  /** SIGKILLs a process and waits for it to be gone. */
  async kill(process: WharfProcess): Promise<void> {
    if (process.child.exitCode !== null || process.child.signalCode !== null) return;
    const exited = once(process.child, 'exit');
    process.child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM and wait (SIGKILL after `graceMs`). */
  async terminate(process: WharfProcess, graceMs = 40_000): Promise<void> {
    if (process.child.exitCode !== null || process.child.signalCode !== null) return;
    const exited = once(process.child, 'exit');
    process.child.kill('SIGTERM');
    const timer = setTimeout(() => process.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Gateways first (they drain), then brokers, then Redis. */
  async stop(): Promise<void> {
    await Promise.all(this.gateways.map((g) => this.terminate(g)));
    await Promise.all([...this.brokers.values()].map((b) => this.terminate(b)));
    await this.stopRedis();
    const hold = this.portHold;
    this.portHold = undefined;
    if (hold !== undefined) await new Promise<void>((resolve) => hold.close(() => resolve()));
  }
}

/** The end of a log file (at most `max` bytes), from `from` on. */
function tail(path: string, from: number, max: number): string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - max);
    const buffer = Buffer.alloc(Math.max(0, size - start));
    const read = readSync(fd, buffer, 0, buffer.length, start);
    return buffer.subarray(0, read).toString();
  } finally {
    closeSync(fd);
  }
}
