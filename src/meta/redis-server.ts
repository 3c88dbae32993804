// Starts a private redis-server child on a free TCP port with its files in a given directory.
// Used by the all-in-one node when no Redis is configured or answering, and by the test harness
// (never the shared 6379). Redis cannot pick its own port (`--port 0` disables TCP), so we take a
// free port from the OS and retry when another process grabs it first.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { WharfError } from '../errors.js';

export interface RedisServerOptions {
  dir: string;
  /** Persist with an append-only file, fsynced every second (the all-in-one node), or keep
   *  nothing (tests). */
  persist?: boolean;
  binary?: string;
  startTimeoutMs?: number;
  /** Listen on this port (a restart on the port clients already know); default: a free one. */
  port?: number;
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

function waitForPort(port: number, deadlineMs: number, child: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(false);
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.write('PING\r\n');
        socket.once('data', (data) => {
          socket.destroy();
          resolve(data.toString().startsWith('+PONG'));
        });
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadlineMs) resolve(false);
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServerHandle> {
  const binary = options.binary ?? 'redis-server';
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let lastError = '';
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
    ];
    // Redis logs to stdout: why it would not start (a port in use, a damaged AOF) is there
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const collect = (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const ready = await Promise.race([
      waitForPort(port, Date.now() + timeoutMs, child),
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
