// The all-in-one Wharf node a benchmark drives as a user would: started as its own process
// (`dist/src/cli/all-in-one.js`, a private Redis, a fresh data dir, sync flush), ready when
// /readyz answers; an operator call with its admin token; and a tenant provisioned with an access
// key and an instance, its rate quotas far above any benchmark's.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../src/meta/redis-server.js';
import { SignedClient } from '../e2e/signed-client.js';

export interface RunningWharf {
  url: string;
  port: number;
  pid: number;
  adminToken: string;
  stop(): Promise<void>;
}

/** Starts the node with `nodeArgs` (node's own flags) and extra environment; waits for /readyz. */
export async function startWharf(
  nodeArgs: readonly string[],
  env: Record<string, string> = {},
): Promise<RunningWharf> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wharf-bench-'));
  const port = await freePort();
  const adminToken = randomBytes(24).toString('base64url');
  const child = spawn(process.execPath, [...nodeArgs, 'dist/src/cli/all-in-one.js'], {
    env: {
      ...process.env,
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: dataDir,
      WHARF_REDIS_URL: 'private',
      WHARF_ADMIN_TOKEN: adminToken,
      WHARF_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`wharf exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ready) return { url, port, pid: child.pid as number, adminToken, stop };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error('wharf did not become ready in 30 s');
}

/** An operator-plane call; the answer's JSON, or throws with the status and body. */
export async function adminCall(
  wharf: RunningWharf,
  method: string,
  path: string,
  body: unknown,
): Promise<Record<string, string>> {
  const res = await fetch(`${wharf.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${wharf.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, string>;
}

export interface BenchTenant {
  accessKeyId: string;
  accessKeySecret: string;
  instanceId: string;
}

/** A tenant with rate quotas far above the benchmark's, an access key and an instance. */
export async function provisionTenant(wharf: RunningWharf): Promise<BenchTenant> {
  const tenant = await adminCall(wharf, 'POST', '/admin/v1/tenants', {
    name: `bench-${Date.now()}`,
    quotas: { publishPerSecond: 10_000_000, consumePerSecond: 10_000_000 },
  });
  const key = await adminCall(
    wharf,
    'POST',
    `/admin/v1/tenants/${tenant.tenantId}/access-keys`,
    {},
  );
  const client = new SignedClient({
    url: wharf.url,
    accessKeyId: key.accessKeyId,
    accessKeySecret: key.accessKeySecret,
    region: 'local',
    maxSockets: 1,
  });
  const instance = (await client.ok('POST', '/v1/instances', { name: 'bench' })) as {
    instanceId: string;
  };
  client.close();
  return {
    accessKeyId: key.accessKeyId,
    accessKeySecret: key.accessKeySecret,
    instanceId: instance.instanceId,
  };
}
