// Delayed messages across real process deaths: the all-in-one node is SIGKILLed mid-dispatch
// and restarted on its data dir (each message dispatched exactly once), and SIGKILLed while its
// Redis is also rolled back to a snapshot older than the schedules (10,000 messages, each
// dispatched exactly once within 1 s of its due time). Copies are counted in the store itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { MetaKeys, startRedisServer, type RedisServerHandle } from '../../src/meta/index.js';
import { openMessageStore } from '../../src/store/index.js';
import {
  checkCopies,
  clientFor,
  publishSpread,
  readCopies,
  type DelayClient,
} from '../helpers/delay-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { provisionTenant, type ProvisionedTenant } from '../helpers/wharf.js';

const entry = join(import.meta.dirname, '../../src/cli/all-in-one.ts');
const QUEUES = 4;

interface Node {
  url: string;
  adminToken: string;
  child: ChildProcess;
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-delay-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startNode(t: Test, dataDir: string, redisUrl: string): Promise<Node> {
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
  const url = await waitFor(
    'the node to listen',
    () => {
      if (child.exitCode !== null) throw new Error(`node exited:\n${out}`);
      return out.includes('Create a tenant') ? /listening on (http:\/\/\S+)/.exec(out)?.[1] : null;
    },
    { timeoutMs: 60_000, intervalMs: 20 },
  );
  const adminToken = /operator token: (\S+)/.exec(out)![1];
  return { url, adminToken, child };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

function clientOf(node: Node, tenant: ProvisionedTenant): DelayClient {
  return clientFor(
    node,
    tenant.instanceId,
    tenant.accessKeyId,
    tenant.accessKeySecret,
    tenant.tenantId,
  );
}

async function setup(t: Test) {
  const dataDir = tempDir(t);
  const redis = await startRedisServer({ dir: tempDir(t) });
  t.teardown(() => redis.stop());
  const node = await startNode(t, dataDir, redis.url);
  const tenant = await provisionTenant(node);
  const client = clientOf(node, tenant);
  t.equal(
    (await client.call('PUT', '/topics/later', { messageType: 'DELAY', queueCount: QUEUES }))
      .status,
    201,
  );
  t.equal((await client.call('PUT', '/groups/g1', {})).status, 201);
  // one message first: the instance's data key is made at its first publish, and a Redis
  // snapshot taken before that could not open any of its messages
  t.equal((await client.publish('later', [{ body: 'first' }])).status, 200);
  await waitFor('the first message', async () => (await client.receive('later', 'g1')).length > 0);
  return { dataDir, redis, node, tenant, client };
}

/** Receives (acking) until every id came at least once; a 503 (Redis restarting, its
 *  connection coming back) is retried, as a client does. */
async function receiveAll(client: DelayClient, ids: readonly string[], seen = new Set<string>()) {
  await waitFor(
    `${ids.length} messages received`,
    async () => {
      try {
        for (const m of await client.receive('later', 'g1')) seen.add(m.messageId);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('receive 503 ')) return false;
        throw error;
      }
      return seen.size >= ids.length;
    },
    { timeoutMs: 60_000, intervalMs: 1 },
  );
  return seen;
}

async function copiesOnDisk(dataDir: string, client: DelayClient) {
  const store = await openMessageStore({ dir: join(dataDir, 'broker-0') });
  try {
    return await readCopies(store, `${client.storePrefix}later`, QUEUES);
  } finally {
    await store.close();
  }
}

t.test('SIGKILL mid-dispatch: every delayed message dispatched exactly once', async (t) => {
  const { dataDir, redis, node, tenant, client } = await setup(t);
  const count = 3_000;
  const ids = await publishSpread(client, 'later', count, Date.now() + 2_000, 2_000);
  const seen = new Set<string>();
  await waitFor('dispatch under way', async () => {
    for (const m of await client.receive('later', 'g1')) seen.add(m.messageId);
    return seen.size >= 300;
  });
  await kill(node.child, 'SIGKILL');
  t.ok(seen.size < count, `killed with ${seen.size} of ${count} received`);
  const again = await startNode(t, dataDir, redis.url);
  const client2 = clientOf(again, tenant);
  await receiveAll(client2, ids, seen);
  t.same(seen, new Set(ids), 'every id received');
  await kill(again.child, 'SIGTERM');
  checkCopies(t, await copiesOnDisk(dataDir, client), count, 60_000);
});

t.test('SIGKILL with Redis rolled back: 10,000 exactly once within 1 s', async (t) => {
  const { dataDir, redis, node, tenant, client } = await setup(t);
  const count = 10_000;
  const admin = new Redis(redis.url);
  await admin.save();
  const snapshot = join(dataDir, 'before.rdb');
  const redisDir = (await admin.config('GET', 'dir'))[1];
  copyFileSync(join(redisDir, 'dump.rdb'), snapshot);
  const due = Date.now() + 30_000; // room for 10,000 publishes and a node restart on a loaded machine
  const ids = await publishSpread(client, 'later', count, due, 1_000);
  const pending = new MetaKeys().wheelPending('0');
  await waitFor('all in the wheel', async () => (await admin.zcard(pending)) === count);
  await admin.quit();

  await kill(node.child, 'SIGKILL');
  await kill(redis.process, 'SIGKILL');
  copyFileSync(snapshot, join(redisDir, 'dump.rdb'));
  const restored: RedisServerHandle = await startRedisServer({ dir: redisDir, port: redis.port });
  t.teardown(() => restored.stop());
  const again = await startNode(t, dataDir, restored.url);
  t.ok(Date.now() < due, 'back before any is due');
  const client2 = clientOf(again, tenant);
  const seen = await receiveAll(client2, ids);
  t.same(seen, new Set(ids), 'every id received');
  await kill(again.child, 'SIGTERM');
  checkCopies(t, await copiesOnDisk(dataDir, client), count, 1_000);
});
