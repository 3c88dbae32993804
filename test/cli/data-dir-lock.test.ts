// Defect 1 of #8: two nodes on one WHARF_DATA_DIR. The first holds an OS lock on the data dir
// (and its store on the broker's dir); a second exits at once naming the directory and the pid of
// the holder; a SIGKILL of the holder leaves no stale lock, so the next node starts.
import t from 'tap';
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { openMessageStore, lockDir, DirLockedError } from '../../src/store/index.js';
import { startTestRedis } from '../helpers/redis.js';

const entry = join(import.meta.dirname, '../../src/cli/all-in-one.ts');

interface Node {
  child: ChildProcess;
  output(): string;
}

function spawnNode(t: Test, dataDir: string, redisUrl: string): Node {
  const child = spawn(process.execPath, [...process.execArgv, entry], {
    env: {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_DATA_DIR: dataDir,
      WHARF_REDIS_URL: redisUrl,
      WHARF_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

/** Resolves with the node's URL once its banner is out (a deadline, not a sleep). */
function listening(node: Node): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner:\n${node.output()}`)), 60_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(node.output());
      if (m !== null && node.output().includes('Create a tenant')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    node.child.stdout!.on('data', check);
    node.child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`exited:\n${node.output()}`));
    });
  });
}

t.test('a second node on a locked data dir exits at once naming the dir and the pid', async (t) => {
  const redis = await startTestRedis(t);
  const dataDir = t.testdir();
  const first = spawnNode(t, dataDir, redis.url);
  const url = await listening(first);
  t.equal((await fetch(`${url}/readyz`)).status, 200);

  const second = spawnNode(t, dataDir, redis.url);
  const [code] = (await once(second.child, 'exit')) as [number | null];
  t.not(code, 0, 'the second node exits non-zero');
  const lines = second
    .output()
    .split('\n')
    .filter((l) => l.length > 0);
  t.equal(lines.length, 1, `one line: ${second.output()}`);
  t.match(lines[0], dataDir, 'it names the directory');
  t.match(lines[0], `pid ${first.child.pid}`, 'it names the holder');
  t.equal((await fetch(`${url}/readyz`)).status, 200, 'the first node serves on');

  const killed = once(first.child, 'exit');
  first.child.kill('SIGKILL');
  await killed;
  const third = spawnNode(t, dataDir, redis.url);
  const thirdUrl = await listening(third);
  t.equal((await fetch(`${thirdUrl}/readyz`)).status, 200, 'no stale lock after SIGKILL');
  const stopped = once(third.child, 'exit');
  third.child.kill('SIGTERM');
  t.equal(((await stopped) as [number | null])[0], 0);
});

t.test('a store refuses a directory another open store holds, until it closes', async (t) => {
  const dir = t.testdir();
  const store = await openMessageStore({ dir, minFreeDiskBytes: 0 });
  await t.rejects(openMessageStore({ dir, minFreeDiskBytes: 0 }), {
    code: 'DirLocked',
    message: new RegExp(`pid ${process.pid}`),
  });
  await store.close();
  const again = await openMessageStore({ dir, minFreeDiskBytes: 0 });
  await again.close();
});

t.test('lockDir is exclusive per descriptor and released by release()', async (t) => {
  const dir = t.testdir();
  const lock = lockDir(dir);
  try {
    lockDir(dir);
    t.fail('a second lock was granted');
  } catch (err) {
    t.ok(err instanceof DirLockedError, 'DirLockedError');
    t.match(err, { code: 'DirLocked', holderPid: process.pid });
  }
  lock.release();
  lock.release();
  lockDir(dir).release();
});
