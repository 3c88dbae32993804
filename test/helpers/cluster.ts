// Test harness for clusters of real processes: a private Redis, brokers and gateways started from
// the sources (`wharf <role>` through tap's loader, so their coverage counts), stopped by the
// test's teardown, and a signed client for the tenant plane through any gateway.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { LocalCluster } from '../../scripts/lib/local-cluster.js';
import { provisionTenant, signedFetch, type ProvisionedTenant } from './wharf.js';

const wharfEntry = join(import.meta.dirname, '../../src/cli/wharf.ts');

export async function startTestCluster(
  t: Test,
  shape: { brokers: number; gateways: number; env?: NodeJS.ProcessEnv },
): Promise<LocalCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wharf-cluster-'));
  const cluster = new LocalCluster({
    command: [process.execPath, ...process.execArgv, wharfEntry],
    // not t.testdir(): tap removes that before this file's teardowns stop the processes writing it
    dataDir,
    masterKey: randomBytes(32).toString('base64url'),
    adminToken: randomBytes(24).toString('base64url'),
    // the longest metadata cache: a loaded machine must not outlast it inside a Redis outage
    env: {
      WHARF_MIN_FREE_DISK_MB: '0',
      WHARF_LOG_LEVEL: 'info',
      WHARF_META_CACHE_MS: '5000',
      // gateways stop at once (the lame-duck time has its own test)
      WHARF_DRAIN_DELAY_MS: '0',
      ...shape.env,
    },
    readyTimeoutMs: 90_000,
  });
  t.teardown(async () => {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await cluster.startRedis();
  await Promise.all(Array.from({ length: shape.brokers }, (_, i) => cluster.startBroker(i + 1)));
  for (let n = 0; n < shape.gateways; n++) await cluster.startGateway();
  return cluster;
}

/** A call's answer; the body is JSON as sent (tests narrow it by what they assert). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked by the asserts
export type CallAnswer = { status: number; body: any; headers: Headers };

export interface TenantClient {
  tenant: ProvisionedTenant;
  /** A signed call on the tenant's instance through gateway `via` (an index). */
  call(via: number, method: string, path: string, body?: unknown): Promise<CallAnswer>;
}

export async function tenantOf(cluster: LocalCluster): Promise<TenantClient> {
  const first = { url: cluster.gateways[0].url, adminToken: cluster.options.adminToken };
  const tenant = await provisionTenant(first);
  return {
    tenant,
    async call(via, method, path, body) {
      const res = await signedFetch(cluster.gateways[via].url, {
        method,
        path: `/v1/instances/${tenant.instanceId}${path}`,
        ...(body === undefined ? {} : { body }),
        ak: tenant.accessKeyId,
        sk: tenant.accessKeySecret,
      });
      const text = await res.text();
      return {
        status: res.status,
        body: text === '' ? undefined : JSON.parse(text),
        headers: res.headers,
      };
    },
  };
}
