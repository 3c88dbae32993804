import t, { type Test } from 'tap';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MetaKeys } from '../../src/meta/keys.js';
import { startTestRedis } from '../helpers/redis.js';

const entry = join(import.meta.dirname, '../../src/cli/all-in-one.ts');

/** Starts the all-in-one node as a process (in a group of its own with `ownGroup`, as a
 *  terminal's foreground job is) and waits for its banner. */
async function startNodeProcess(
  t: Test,
  env: NodeJS.ProcessEnv,
  ownGroup = false,
): Promise<{ child: ChildProcessWithoutNullStreams; url: string; output: () => string }> {
  const child = spawn(process.execPath, [...process.execArgv, entry], {
    env: { ...process.env, WHARF_PORT: '0', WHARF_LOG_LEVEL: 'warn', ...env },
    stdio: 'pipe',
    detached: ownGroup,
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner:\n${out}`)), 60_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m !== null && out.includes('Create a tenant')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', check);
    child.once('exit', () => reject(new Error(`exited:\n${out}`)));
  });
  return { child, url, output: () => out };
}

t.test('the all-in-one node starts, serves, and drains on SIGTERM', async (t) => {
  const dataDir = t.testdir();
  const { child, url, output } = await startNodeProcess(t, {
    WHARF_DATA_DIR: dataDir,
    WHARF_REDIS_URL: 'private',
  });
  const out = output();
  const token = /operator token: (\S+)/.exec(out)![1];
  t.ok(existsSync(join(dataDir, 'admin.token')));
  t.ok(existsSync(join(dataDir, 'master.key')));
  t.equal((await fetch(`${url}/readyz`)).status, 200);
  const created = await fetch(`${url}/admin/v1/tenants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{"name":"acme"}',
  });
  t.equal(created.status, 201);
  const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  t.match(
    await metrics.text(),
    /wharf_broker_stat\{broker="0",stat="fdatasyncs"\} \d+/,
    'broker figures in /metrics',
  );
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'clean exit');
  t.ok(existsSync(join(dataDir, 'redis')), 'private redis files in the data dir');
});

t.test('a bad configuration exits 2 with one line per problem', async (t) => {
  const child = spawn(process.execPath, [...process.execArgv, entry], {
    env: { ...process.env, WHARF_PORT: 'x', WHARF_REGION: 'A B' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 2);
  t.match(err, /WHARF_PORT=x/);
  t.match(err, /WHARF_REGION=A B/);
});

t.test('without any Redis it says how to get one', async (t) => {
  const child = spawn(process.execPath, [...process.execArgv, entry], {
    env: {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_DATA_DIR: t.testdir(),
      WHARF_REDIS_URL: 'private',
      PATH: '/nonexistent',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 1);
  t.match(err, /Wharf needs Redis: set WHARF_REDIS_URL/);
});

t.test('a node whose Redis is gone still stops cleanly on SIGTERM', async (t) => {
  const redis = await startTestRedis(t);
  const { child } = await startNodeProcess(t, {
    WHARF_DATA_DIR: t.testdir(),
    WHARF_REDIS_URL: redis.url,
  });
  await redis.stop();
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exits 0, not after the drain deadline with 1');
});

t.test(
  'a second all-in-one node on the same Redis is refused; a crashed one takes its id back',
  async (t) => {
    const redis = await startTestRedis(t);
    const env = { WHARF_REDIS_URL: redis.url, WHARF_MASTER_KEY: 'k'.repeat(43) };
    const firstDir = t.testdir({ first: {}, second: {} });
    const first = await startNodeProcess(t, { ...env, WHARF_DATA_DIR: join(firstDir, 'first') });

    // a copy of the first's data dir (a cloned volume): its node.owner is the first's
    copyFileSync(join(firstDir, 'first', 'node.owner'), join(firstDir, 'second', 'node.owner'));
    const second = spawn(process.execPath, [...process.execArgv, entry], {
      env: { ...process.env, ...env, WHARF_PORT: '0', WHARF_DATA_DIR: join(firstDir, 'second') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    second.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(second, 'exit')) as [number | null];
    t.equal(code, 1, 'the second node, on a copy of the data dir, is refused');
    t.match(err, /another all-in-one node is live on redis:\/\/127\.0\.0\.1:\d+/);
    t.equal((await fetch(`${first.url}/readyz`)).status, 200, 'the first serves on');

    // the first crashes, its lease still held: restarted on its own data dir, it takes the id back
    const crashed = once(first.child, 'exit');
    first.child.kill('SIGKILL');
    await crashed;
    const client = new Redis(redis.url);
    t.teardown(() => client.disconnect());
    const again = await startNodeProcess(t, { ...env, WHARF_DATA_DIR: join(firstDir, 'first') });
    t.equal((await fetch(`${again.url}/readyz`)).status, 200, 'restarted on its own data dir');
    const exited = once(again.child, 'exit');
    again.child.kill('SIGTERM');
    t.same(await exited, [0, null]);
    t.equal(await client.exists(new MetaKeys().brokerLease(0)), 0, 'the lease given up at stop');
  },
);
