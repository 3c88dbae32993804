// The gateway entry point (src/cli/gateway.ts, `wharf gateway`) as a real process: on a shared
// Redis with no broker registered it serves /healthz, is not ready (and says so) and stops
// cleanly on SIGTERM; without a shared Redis URL or the master key it refuses to start. A cluster
// with brokers: test/cluster/.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

const entry = join(import.meta.dirname, '../../src/cli/gateway.ts');

t.test('the gateway process serves /healthz and exits 0 on SIGTERM', async (t) => {
  const redis = await startTestRedis(t);
  const child = spawn(process.execPath, [...process.execArgv, entry], {
    env: {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_HOST: '127.0.0.1',
      WHARF_DATA_DIR: t.testdir(),
      WHARF_REDIS_URL: redis.url,
      WHARF_ADMIN_TOKEN: 'test-admin-token-0123456789',
      WHARF_MASTER_KEY: 'test-master-key-0123456789-0123456789',
      WHARF_LOG_LEVEL: 'info',
      WHARF_MIN_FREE_DISK_MB: '0',
      WHARF_DOCS: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit');

  const url = await waitFor(
    'the gateway to log its URL',
    () => {
      if (child.exitCode !== null) throw new Error(`the gateway exited:\n${out}`);
      const line = out.split('\n').find((l) => l.includes('gateway listening'));
      return line === undefined ? null : /(http:\/\/[\d.]+:\d+)/.exec(line)?.[1];
    },
    { timeoutMs: 60_000, intervalMs: 20 },
  );
  const health = await fetch(`${url}/healthz`);
  t.equal(health.status, 200, '/healthz answers');
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 503, 'not ready while no broker is registered');
  t.match(await ready.text(), /no broker is ready/);

  child.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  t.equal(signal, null, 'not killed by the signal');
  t.equal(code, 0, 'a clean exit');
  await t.rejects(fetch(`${url}/healthz`), 'no longer serving');
});

t.test('without a shared Redis URL the gateway refuses to start (exit 2)', async (t) => {
  for (const redisUrl of [undefined, 'private']) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_DATA_DIR: t.testdir(),
      WHARF_MASTER_KEY: 'test-master-key-0123456789-0123456789',
    };
    delete env.WHARF_REDIS_URL;
    if (redisUrl !== undefined) env.WHARF_REDIS_URL = redisUrl;
    const child = spawn(process.execPath, [...process.execArgv, entry], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    t.equal(code, 2, `WHARF_REDIS_URL=${redisUrl ?? '(unset)'}`);
    t.match(err, /WHARF_REDIS_URL: a gateway process needs the shared Redis URL/);
  }
});

t.test('without the master key a gateway or broker refuses to start (exit 2)', async (t) => {
  const wharf = join(import.meta.dirname, '../../src/cli/wharf.ts');
  for (const role of ['gateway', 'broker']) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_DATA_DIR: t.testdir(),
      WHARF_REDIS_URL: 'redis://127.0.0.1:1',
      WHARF_BROKER_ID: '1',
    };
    delete env.WHARF_MASTER_KEY;
    const child = spawn(process.execPath, [...process.execArgv, wharf, role], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    t.equal(code, 2, role);
    t.match(err, new RegExp(`WHARF_MASTER_KEY: a ${role} process needs the cluster's master key`));
  }
});

t.test('wharf with an unknown role prints its usage and exits 2', async (t) => {
  const wharf = join(import.meta.dirname, '../../src/cli/wharf.ts');
  const child = spawn(process.execPath, [...process.execArgv, wharf, 'nonsense'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 2);
  t.match(err, /usage: wharf <all-in-one\|gateway\|broker>/);
});
