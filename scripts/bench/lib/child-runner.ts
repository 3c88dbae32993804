// Runs a load generator in its own Node process, so the client's CPU is its own and not the
// orchestrator's, and gets its JSON result back over IPC. The child is `process.execPath` with the
// parent's execArgv (a TypeScript loader under tap follows), and sends exactly one message:
// { ok: true, value } or { ok: false, error }. A child that outlives its timeout is killed.
import { spawn } from 'node:child_process';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ChildOptions {
  /** Kill the child (SIGTERM, then SIGKILL 5 s later) after this long. Default 10 minutes. */
  timeoutMs?: number;
}

type ChildReport = { ok: true; value: unknown } | { ok: false; error: string };

function isChildReport(message: unknown): message is ChildReport {
  if (typeof message !== 'object' || message === null || !('ok' in message)) return false;
  return message.ok === true ? 'value' in message : message.ok === false && 'error' in message;
}

/**
 * The path of module `name` (no extension) beside the module at `metaUrl`, with that module's own
 * extension: `.js` when compiled, `.ts` under tap's loader.
 */
export function siblingModule(metaUrl: string, name: string): string {
  const here = fileURLToPath(metaUrl);
  return join(dirname(here), `${name}${extname(here)}`);
}

/** Spawns `entryPath` with `args` and resolves with the value it reports. */
export function runInChild(
  entryPath: string,
  args: readonly string[],
  options: ChildOptions = {},
): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, entryPath, ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    let report: ChildReport | undefined;
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    }, timeoutMs);
    child.on('message', (message: unknown) => {
      if (report === undefined && isChildReport(message)) report = message;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      if (timedOut) reject(new Error(`load process timed out after ${timeoutMs} ms`));
      else if (report === undefined) {
        reject(new Error(`load process exited (${signal ?? `code ${code}`}) without a result`));
      } else if (report.ok) resolve(report.value);
      else reject(new Error(report.error));
    });
  });
}

/** In the child: runs `work`, sends its result (or error) to the parent, then lets the process end. */
export async function reportToParent(work: () => Promise<unknown>): Promise<void> {
  let report: ChildReport;
  try {
    report = { ok: true, value: await work() };
  } catch (error) {
    report = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  const send = process.send?.bind(process);
  if (send === undefined) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  await new Promise<void>((resolve) => {
    send(report, undefined, {}, () => resolve());
  });
  process.disconnect();
}
