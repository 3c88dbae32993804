// `npm run cluster` as a user runs it: the launcher in a terminal, stopped with Ctrl-C, which
// the terminal sends to its whole foreground group. Only the launcher must get it: it stops the
// gateways (they drain), then the brokers, then Redis, each once (a second signal makes a node
// exit at once, 1, mid-drain).
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/meta/index.js';

// the launcher runs the built node (dist), as `npm run cluster` does
const launcher = join(import.meta.dirname, '../../dist/scripts/cluster.js');

t.test('Ctrl-C stops the whole cluster in order, each process cleanly', async (t) => {
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
  // the launcher and what it started (each in a group of its own), if the test failed midway
  t.teardown(() => {
    for (const pid of [child.pid!, ...[...out.matchAll(/ pid (\d+)/g)].map((m) => Number(m[1]))]) {
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
  const pids = [...out.matchAll(/ pid (\d+)/g)].map((m) => Number(m[1]));
  t.equal(pids.length, 6, 'Redis, 3 brokers and 2 gateways');
  const exited = once(child, 'exit');
  process.kill(-child.pid!, 'SIGINT'); // what Ctrl-C does
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'the launcher exits 0');
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  t.same(alive, [], 'every process it started is gone');
  const logs = join(dataDir, 'logs');
  for (const file of readdirSync(logs)) {
    const text = readFileSync(join(logs, file), 'utf8');
    t.notMatch(text, /second signal|drain took too long/, `${file}: stopped once, in order`);
    t.match(text, /"msg":"stopped"/, `${file}: stopped cleanly`);
  }
});
