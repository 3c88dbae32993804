// Starts the http-floor row's server (http-floor-server.ts) as its own process, so the bench
// samples its CPU apart from the load process; resolves once it listens.
import { spawn } from 'node:child_process';
import { siblingModule } from './child-runner.js';

export interface RunningFloor {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startHttpFloor(): Promise<RunningFloor> {
  // the node flags of this process too: under tap they load the TypeScript sources
  const child = spawn(
    process.execPath,
    [...process.execArgv, siblingModule(import.meta.url, 'http-floor-server')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`http floor server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
