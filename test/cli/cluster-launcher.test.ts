// `npm run cluster` as a user runs it: the launcher in a terminal, stopped with Ctrl-C, which
// the terminal sends to its whole foreground group. Only the launcher must get it: it stops the
// gateways (they drain), then the brokers, then Redis, each once (a second signal makes a node
// exit at once, 1, mid-drain). A launcher that dies without stopping them (SIGKILL) leaves
// nothing running: each process stops on its own.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/meta/index.js';

// the launcher runs the built node (dist), as `npm run cluster` does
const launcher = join(import.meta.dirname, '../../dist/scripts/cluster.js');

/** Starts the launcher as a terminal's foreground job and waits for its lines: one per
 *  process (role, id, pid), then the gateways' URLs. */
async function startLauncher(
  t: Test,
): Promise<{ child: ChildProcess; pids: number[]; watchdogs: number[]; dataDir: string }> {
  const dataDir = t.testdir();
  const port = await freePort(); // the second gateway takes the next one
  const child = spawn(process.execPath, [launcher], {
    env: {
      ...process.env,
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: dataDir,
      WHARF_LOG_LEVEL: 'info',
    },
    stdio: 'pipe',
    detached: true, // a terminal's foreground job: a group of its own
  });
  let out = '';
  const printed = () => [...out.matchAll(/ pid (\d+)/g)].map((m) => Number(m[1]));
  // the launcher and what it started (each in a group of its own), if the test failed midway
  t.teardown(() => {
    for (const pid of [child.pid!, ...printed()]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not started:\n${out}`)), 120_000);
    child.stdout.on('data', () => {
      if (!out.includes('Ctrl-C stops everything')) return;
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', () => reject(new Error(`exited:\n${out}`)));
  });
  const pids = printed();
  const redisPid = Number(/^redis +pid (\d+)/m.exec(out)?.[1]);
  // Linux: the watchdog that stops Redis once the launcher and the rest are gone
  const watchdogs = watchdogsOf(redisPid);
  t.teardown(() => {
    for (const pid of watchdogs.filter(running)) process.kill(pid, 'SIGKILL');
  });
  return { child, pids, watchdogs, dataDir };
}

/** The processes of `pids` still running once they are all gone or `ms` passed. */
async function survivors(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (pids.some(running) && Date.now() < deadline) await sleep(50);
  return pids.filter(running);
}

/** Whether `pid` still runs. An exited process its dead parent never reaped (no init reaps
 *  orphans in some containers) is a zombie: gone too. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): kill(0) is all there is
  }
}

/** Linux: the watchdog processes (`node -e …`) watching `pid`. */
function watchdogsOf(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  return entries.map(Number).filter((p) => {
    try {
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      return args[1] === '-e' && args.at(-1) === String(pid) && running(p);
    } catch {
      return false;
    }
  });
}

t.test('Ctrl-C stops the whole cluster in order, each process cleanly', async (t) => {
  const { child, pids, watchdogs, dataDir } = await startLauncher(t);
  t.equal(pids.length, 6, 'Redis, 3 brokers and 2 gateways');
  const exited = once(child, 'exit');
  process.kill(-child.pid!, 'SIGINT'); // what Ctrl-C does
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'the launcher exits 0');
  t.same(pids.filter(running), [], 'every process it started is gone');
  t.same(await survivors(watchdogs, 5_000), [], 'and the Redis watchdog');
  const logs = join(dataDir, 'logs');
  for (const file of readdirSync(logs)) {
    const text = readFileSync(join(logs, file), 'utf8');
    t.notMatch(text, /second signal|drain took too long/, `${file}: stopped once, in order`);
    t.match(text, /"msg":"stopped"/, `${file}: stopped cleanly`);
  }
});

t.test('a SIGKILLed launcher leaves nothing running: each process stops on its own', async (t) => {
  const { child, pids, watchdogs, dataDir } = await startLauncher(t);
  t.equal(pids.length, 6, 'Redis, 3 brokers and 2 gateways');
  if (process.platform === 'linux') t.equal(watchdogs.length, 1, "Redis's watchdog");
  const exited = once(child, 'exit');
  process.kill(child.pid!, 'SIGKILL'); // no handler of its own runs
  await exited;
  t.same(await survivors([...pids, ...watchdogs], 15_000), [], 'every process it started is gone');
  const logs = join(dataDir, 'logs');
  for (const file of readdirSync(logs)) {
    const text = readFileSync(join(logs, file), 'utf8');
    t.match(text, /"stdin":"closed","msg":"draining and stopping"/, `${file}: told by its stdin`);
    t.match(text, /"msg":"stopped"/, `${file}: stopped cleanly`);
    t.notMatch(
      text,
      /second signal|drain took too long|ECONNREFUSED/,
      `${file}: Redis outlived it`,
    );
  }
});
