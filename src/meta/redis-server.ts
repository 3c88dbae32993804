// Starts a private redis-server child on a free TCP port with its files in a given directory.
// Used by the all-in-one node when no Redis is configured or answering, and by the test harness
// (never the shared 6379). Redis cannot pick its own port (`--port 0` disables TCP), so we take a
// free port from the OS and retry when another process grabs it first.
//
// A persistent server (the all-in-one node's) writes its pid to `redis.pid` in its dir. Its
// parent takes the data dir's lock first, so a server still running there is the one a node that
// died without stopping it (SIGKILL) left behind: it is stopped (SIGTERM: its AOF is flushed)
// before the new one starts, never two servers on one AOF. A server loading its AOF answers
// -LOADING: the start waits for it (a large wheel of delayed messages takes seconds).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WharfError } from '../errors.js';

export interface RedisServerOptions {
  dir: string;
  /** Persist with an append-only file, fsynced every second (the all-in-one node), or keep
   *  nothing (tests). */
  persist?: boolean;
  binary?: string;
  startTimeoutMs?: number;
  /** How long a server that answers -LOADING (reading its AOF) is waited for; default 10 min. */
  loadTimeoutMs?: number;
  /** Listen on this port (a restart on the port clients already know); default: a free one. */
  port?: number;
  /** Start it in a process group of its own: a terminal's Ctrl-C (SIGINT to the foreground
   *  group) then reaches only its owner, which stops it last, after its own drain. */
  ownProcessGroup?: boolean;
}

export interface RedisServerHandle {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

type PortState = 'ready' | 'loading' | 'down';

/** What one PING on `port` gets: +PONG, -LOADING (the server reads its AOF), or nothing. */
function ping(port: number): Promise<PortState> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (state: PortState) => {
      socket.destroy();
      resolve(state);
    };
    socket.setTimeout(1_000, () => done('down'));
    socket.once('error', () => done('down'));
    socket.once('connect', () => {
      socket.write('PING\r\n');
      socket.once('data', (data) => {
        const reply = data.toString();
        done(
          reply.startsWith('+PONG') ? 'ready' : reply.startsWith('-LOADING') ? 'loading' : 'down',
        );
      });
    });
  });
}

/** Waits until the server on `port` answers PONG: up to `startMs` for it to listen, then as
 *  long as it answers -LOADING (up to `loadMs`); false when it exits or a deadline passes. */
async function waitForPort(
  port: number,
  startMs: number,
  loadMs: number,
  child: ChildProcess,
): Promise<boolean> {
  const started = Date.now();
  let loadingSince: number | null = null;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const state = await ping(port);
    if (state === 'ready') return true;
    if (state === 'loading') loadingSince ??= Date.now();
    const now = Date.now();
    if (loadingSince === null ? now - started > startMs : now - loadingSince > loadMs) return false;
    await sleep(25);
  }
}

/** The pid a persistent server left in `dir` when that process still runs redis-server in
 *  `dir` (Linux: its /proc entry); null otherwise (none, a stale file, a reused pid). */
export function strayServerPid(dir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, PID_FILE), 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return null;
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!command.includes('redis-server')) return null;
    return readlinkSync(`/proc/${pid}/cwd`) === realpathSync(dir) ? pid : null;
  } catch {
    return null; // gone, or no /proc to tell it is ours: never signal a process not known ours
  }
}

/** Stops the server a dead predecessor left running in `dir`: SIGTERM (it flushes its AOF),
 *  SIGKILL after 5 s. Resolves once it is gone. */
async function stopStrayServer(dir: string): Promise<number | null> {
  const pid = strayServerPid(dir);
  if (pid === null) return null;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return strayServerPid(dir) === pid;
    } catch {
      return false;
    }
  };
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name);
    } catch {
      // gone meanwhile (ESRCH): nothing to stop
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 5_000;
  while (alive()) {
    if (Date.now() > deadline) signal('SIGKILL');
    await sleep(25);
  }
  return pid;
}

const PID_FILE = 'redis.pid';

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServerHandle> {
  const binary = options.binary ?? 'redis-server';
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const loadTimeoutMs = options.loadTimeoutMs ?? 600_000;
  let lastError = '';
  if (options.persist === true) await stopStrayServer(options.dir);
  for (let tries = 0; tries < (options.port === undefined ? 5 : 1); tries++) {
    const port = options.port ?? (await freePort());
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      options.dir,
      '--save',
      '',
      // AOF, fsynced every second: Redis holds the only copy of tenants and keys, and a write
      // is in the file (the page cache) before its reply, so a killed server loses nothing and
      // a crash of the machine at most the last second.
      '--appendonly',
      options.persist === true ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      ...(options.persist === true ? ['--pidfile', resolve(options.dir, PID_FILE)] : []),
    ];
    // Redis logs to stdout: why it would not start (a port in use, a damaged AOF) is there
    const child = spawn(binary, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownProcessGroup === true,
    });
    let stderr = '';
    const collect = (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const ready = await Promise.race([
      waitForPort(port, timeoutMs, loadTimeoutMs, child),
      spawnError.then((err) => {
        lastError = err.message;
        return false;
      }),
    ]);
    if (ready) {
      for (const stream of [child.stdout, child.stderr]) {
        stream?.removeAllListeners('data');
        stream?.resume();
      }
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        process: child,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        },
      };
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (lastError.includes('ENOENT')) break;
    lastError = lastError || stderr.trim();
  }
  throw new WharfError('Unavailable', `could not start ${binary}: ${lastError || 'no answer'}`);
}
