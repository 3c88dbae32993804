// Deleting a tenant (or an instance) shreds its messages: bodies are sealed with the instance's
// data key, so none is ever in the data dir in plaintext; deletion removes the key from Redis and
// the instance's consume queues and internal (trace) queues at once, and neither a tenant created
// again under the same names nor a restart of the node sees anything of it. Runs the real
// all-in-one node as a child process against a real redis-server that outlives the node.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  adminFetch,
  provisionTenant,
  signedFetch,
  startWharf,
  type ProvisionedTenant,
} from '../helpers/wharf.js';

const entry = join(import.meta.dirname, '../../src/cli/all-in-one.ts');

interface Node {
  url: string;
  adminToken: string;
  stop(): Promise<void>;
}

async function startNode(t: Test, dataDir: string, redisUrl: string): Promise<Node> {
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, entry], {
    env: {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_DATA_DIR: dataDir,
      WHARF_REDIS_URL: redisUrl,
      WHARF_SEGMENT_MB: '4',
      WHARF_MIN_FREE_DISK_MB: '0',
      WHARF_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit');
  const url = await Promise.race([
    waitFor('the node to listen', () => /listening on (http:\/\/\S+)/.exec(out)?.[1], {
      timeoutMs: 60_000,
    }),
    exited.then(() => Promise.reject(new Error(`the node exited:\n${out}`))),
  ]);
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  return {
    url,
    adminToken,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Every file under `dir` (Redis's own files left out: no body is ever sent to Redis). */
function filesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'redis') files.push(...filesUnder(path));
    } else files.push(path);
  }
  return files;
}

/** Files under `dir` that contain `needle`, from one pass in which no file vanished: a live
 *  broker replaces files (a temporary file renamed over its target), and a pass that raced such
 *  a rename may have read the target's old bytes, so it is done again. */
function filesHolding(dir: string, needle: Buffer): string[] {
  for (let pass = 1; ; pass++) {
    try {
      return filesUnder(dir).filter((file) => readFileSync(file).includes(needle));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || pass >= 100) throw error;
    }
  }
}

/** Directories under `dir` whose name mentions `id` (consume queues, internal queues). */
function dirsNaming(dir: string, id: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!statSync(path).isDirectory()) continue;
    if (name.includes(id)) found.push(path);
    else found.push(...dirsNaming(path, id));
  }
  return found;
}

/** Signed calls of one tenant; a 503 (a node just restarted on a loaded machine, whose first
 *  Redis commands timed out) is retried after its retry-after, as a client does, for 20 s. */
function client(node: Node, tenant: ProvisionedTenant) {
  const base = `/v1/instances/${tenant.instanceId}`;
  return async (method: string, path: string, body?: unknown) => {
    const giveUpAt = Date.now() + 20_000;
    for (;;) {
      const res = await signedFetch(node.url, {
        method,
        path: `${base}${path}`,
        ...(body === undefined ? {} : { body }),
        ak: tenant.accessKeyId,
        sk: tenant.accessKeySecret,
      });
      const text = await res.text();
      if (res.status === 503 && Date.now() < giveUpAt) {
        const retryAfterS = Number(res.headers.get('retry-after') ?? '1');
        await new Promise((resolve) => setTimeout(resolve, retryAfterS * 1000));
        continue;
      }
      return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
    }
  };
}

interface Received {
  messageId: string;
  body: string;
  receiptHandle: string;
}

async function setUp(t: Test, node: Node, name: string) {
  const tenant = await provisionTenant(node, { name });
  const call = client(node, tenant);
  t.equal(
    (await call('PUT', '/topics/orders', { messageType: 'NORMAL', queueCount: 1 })).status,
    201,
  );
  t.equal((await call('PUT', '/groups/billing', {})).status, 201);
  return { tenant, call };
}

t.test(
  'a deleted tenant leaves nothing readable: sealed bodies, queues gone, no resurrection',
  async (t) => {
    const redis = await startTestRedis(t);
    const dataDir = t.testdir();
    let node = await startNode(t, dataDir, redis.url);
    const canary = `shred-canary-${randomBytes(8).toString('hex')}`;
    const { tenant, call } = await setUp(t, node, 'shred-acme');
    const survivor = await setUp(t, node, 'shred-survivor');
    t.equal(
      (
        await survivor.call('POST', '/topics/orders/messages', {
          messages: [{ body: `${canary}-kept` }],
        })
      ).status,
      200,
    );

    const published = await call('POST', '/topics/orders/messages', {
      messages: [{ body: canary, keys: ['order-1'] }],
    });
    t.equal(published.status, 200);
    const [{ messageId }] = (published.body as { messages: { messageId: string }[] }).messages;
    const got = await call('POST', '/topics/orders/groups/billing/receive', {
      maxMessages: 1,
      waitMs: 0,
    });
    const [received] = (got.body as { messages: Received[] }).messages;
    t.equal(received?.body, canary, 'the tenant itself reads its body as sent');
    const byId = await call('GET', `/topics/orders/messages/${messageId}`);
    t.match(byId, { status: 200, body: { body: canary } }, 'and finds it by id');
    const brokerDir = join(dataDir, 'broker-0');
    // the delivery is traced: the instance's internal trace queue exists before the deletion
    await waitFor('the trace queue', () => dirsNaming(brokerDir, '%25TRACE%25').length > 0);
    t.ok(dirsNaming(brokerDir, tenant.instanceId).length >= 2, 'the topic and trace queues exist');
    t.same(
      filesHolding(dataDir, Buffer.from(canary)),
      [],
      '(a) no file of the data dir holds the body in plaintext, even while it is live',
    );

    t.equal((await adminFetch(node, 'DELETE', `/admin/v1/tenants/${tenant.tenantId}`)).status, 204);
    t.same(
      dirsNaming(brokerDir, tenant.tenantId),
      [],
      '(b) no consume-queue or trace directory of the tenant is left',
    );
    const meta = new Redis(redis.url, { lazyConnect: true });
    await meta.connect();
    t.teardown(() => meta.quit());
    // its usage stays, for the bills that come after (API.md): nothing else of it
    const left = await meta.keys(`wharf:{${tenant.tenantId}}*`);
    t.same(
      left.filter((key) => !/:usage(-instances|-markers|:\d+)$/.test(key)),
      [],
      'its data key is gone from Redis',
    );

    const again = await setUp(t, node, 'shred-acme');
    const call2 = again.call;
    t.match(
      await call2('POST', '/topics/orders/groups/billing/receive', { maxMessages: 32, waitMs: 0 }),
      { status: 200, body: { messages: [] } },
      '(c) a tenant created again under the same names receives nothing',
    );
    t.match(await call2('GET', '/topics/orders/messages?key=order-1'), {
      status: 200,
      body: { messages: [] },
    });

    await node.stop();
    node = await startNode(t, dataDir, redis.url);
    t.same(
      dirsNaming(brokerDir, tenant.tenantId),
      [],
      '(d) a restart rebuilds no queue of the deleted tenant',
    );
    const call3 = client(node, again.tenant);
    t.match(
      await call3('POST', '/topics/orders/groups/billing/receive', { maxMessages: 32, waitMs: 0 }),
      { status: 200, body: { messages: [] } },
      '(d) nor does the new tenant receive anything after the restart',
    );
    t.match(await call3('GET', '/topics/orders/messages?key=order-1'), {
      status: 200,
      body: { messages: [] },
    });
    t.same(filesHolding(dataDir, Buffer.from(canary)), [], 'still no plaintext body on disk');
    const kept = await client(node, survivor.tenant)(
      'POST',
      '/topics/orders/groups/billing/receive',
      {
        maxMessages: 32,
        waitMs: 0,
      },
    );
    t.same(
      (kept.body as { messages: Received[] }).messages.map((m) => m.body),
      [`${canary}-kept`],
      'another tenant still reads its sealed body after the restart (its key is in Redis)',
    );
    await node.stop();
  },
);

t.test(
  "deleting one instance shreds it and leaves the tenant's other instances readable",
  async (t) => {
    const wharf = await startWharf(t);
    const tenant = await provisionTenant(wharf);
    const other = await signedFetch(wharf.url, {
      method: 'POST',
      path: '/v1/instances',
      body: { name: 'other' },
      ak: tenant.accessKeyId,
      sk: tenant.accessKeySecret,
    });
    const { instanceId: otherId } = (await other.json()) as { instanceId: string };
    const node = { url: wharf.url, adminToken: wharf.adminToken, stop: () => Promise.resolve() };
    const doomed = client(node, tenant);
    const kept = client(node, { ...tenant, instanceId: otherId });
    const ids: string[] = [];
    for (const call of [doomed, kept]) {
      t.equal(
        (await call('PUT', '/topics/orders', { messageType: 'NORMAL', queueCount: 1 })).status,
        201,
      );
      t.equal((await call('PUT', '/groups/billing', {})).status, 201);
      const published = await call('POST', '/topics/orders/messages', {
        messages: [{ body: 'instance-canary' }],
      });
      ids.push((published.body as { messages: { messageId: string }[] }).messages[0].messageId);
      t.equal(
        (
          (
            await call('POST', '/topics/orders/groups/billing/receive', {
              maxMessages: 1,
              waitMs: 0,
            })
          ).body as { messages: Received[] }
        ).messages.length,
        1,
      );
    }
    const brokerDir = wharf.brokerDir;
    await waitFor('the trace queue', () => dirsNaming(brokerDir, '%25TRACE%25').length >= 2);
    const deleted = await signedFetch(wharf.url, {
      method: 'DELETE',
      path: `/v1/instances/${tenant.instanceId}`,
      ak: tenant.accessKeyId,
      sk: tenant.accessKeySecret,
    });
    t.equal(deleted.status, 204);
    t.same(
      dirsNaming(brokerDir, tenant.instanceId),
      [],
      'no consume-queue or trace directory of the instance is left',
    );
    t.equal(
      await wharf.meta.redis.exists(wharf.meta.keys.dataKey(tenant.tenantId, tenant.instanceId)),
      0,
      'its data key is deleted',
    );
    t.equal(
      await wharf.meta.redis.exists(wharf.meta.keys.dataKey(tenant.tenantId, otherId)),
      1,
      "the other instance's key is not",
    );
    t.same(
      filesHolding(brokerDir, Buffer.from('instance-canary')),
      [],
      'no body in plaintext on disk',
    );
    // a publish that got past a gateway's cache just before the deletion reached the broker late
    await t.rejects(
      wharf.broker.publish(
        {
          tenantId: tenant.tenantId,
          instanceId: tenant.instanceId,
          topic: 'orders',
          messageType: 'NORMAL',
          queueCount: 1,
          retentionHours: 72,
          dedupWindowMs: 600_000,
          createdAt: Date.now(),
        },
        [{ body: Buffer.from('late-canary'), bodyEncoding: 'utf8' }],
      ),
      { code: 'InstanceNotFound' },
      'a late publish to the deleted instance is refused, not stored plain or under a new key',
    );
    t.equal(
      await wharf.meta.redis.exists(wharf.meta.keys.dataKey(tenant.tenantId, tenant.instanceId)),
      0,
      'and it made no data key',
    );
    t.same(filesHolding(brokerDir, Buffer.from('late-canary')), []);
    t.match(
      await kept('GET', `/topics/orders/messages/${ids[1]}`),
      { status: 200, body: { body: 'instance-canary' } },
      'the other instance still reads its body',
    );
  },
);
