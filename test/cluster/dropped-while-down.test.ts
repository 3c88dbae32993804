// Deletions while a broker is down (real processes: 2 brokers, 1 gateway). Broker 2 is stopped;
// a topic, a group and an instance with data on it are deleted; broker 2 starts again and applies
// the drops the gateway left for it before it serves. The topic created again under its name gets
// none of the deleted one's messages, immediate or delayed, and starts its queues afresh; the
// group created again starts from its creation, not from the deleted one's cursors; the deleted
// instance's queues are gone from broker 2's disk.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Redis } from 'ioredis';
import { brokerMacKey } from '../../src/cli/broker-setup.js';
import { MetaKeys } from '../../src/meta/index.js';
import { MessageIdCodec } from '../../src/protocol/index.js';
import { startTestCluster, tenantOf, type TenantClient } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait-for.js';

// three processes started from the sources, one started twice, on a shared 2-core machine
t.setTimeout(300_000);

t.test('a topic, group and instance deleted while a broker is down stay deleted', async (t) => {
  const cluster = await startTestCluster(t, { brokers: 2, gateways: 1 });
  const ids = new MessageIdCodec(brokerMacKey(cluster.options.masterKey));
  const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const client = await tenantOf(cluster);
  const other = await tenantOf(cluster); // its instance is deleted
  const ok = async (answer: Promise<{ status: number }>, status: number, what: string) =>
    t.equal((await answer).status, status, what);
  /** Publishes each body in a call of its own (a call's messages share a queue, calls take the
   *  queues in turn) and answers how many landed on broker 2. */
  const publishEach = async (
    as: TenantClient,
    topic: string,
    bodies: string[],
    deliverAt?: number,
  ): Promise<number> => {
    let onBroker2 = 0;
    for (const body of bodies) {
      const res = await as.call(0, 'POST', `/topics/${topic}/messages`, {
        messages: [{ body, ...(deliverAt === undefined ? {} : { deliverAt }) }],
      });
      if (res.status !== 200) throw new Error(`publish ${body}: ${res.status}`);
      if (ids.brokerOf(res.body.messages[0].messageId) === 2) onBroker2++;
    }
    return onBroker2;
  };
  const bodies = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  // the group that reads the topic is older than every message: it would be handed them all
  await ok(client.call(0, 'PUT', '/groups/readers', {}), 201, 'group readers');
  const orders = { messageType: 'NORMAL', queueCount: 4 };
  await ok(client.call(0, 'PUT', '/topics/orders', orders), 201, 'topic orders');
  t.ok((await publishEach(client, 'orders', bodies('old-', 8))) > 0, 'old messages on broker 2');
  // due after broker 2 is back, or at its start: either way not dispatched when deleted
  const oldDueMs = Date.now() + 10_000;
  t.ok(
    (await publishEach(client, 'orders', bodies('old-delayed-', 4), oldDueMs)) > 0,
    'old delayed messages on broker 2',
  );

  // a group with cursors on both brokers (its first receive), and messages past them
  await ok(client.call(0, 'PUT', '/topics/events', orders), 201, 'topic events');
  await ok(client.call(0, 'PUT', '/groups/audit', {}), 201, 'group audit');
  const first = await client.call(0, 'POST', '/topics/events/groups/audit/receive', {
    waitSeconds: 0,
  });
  t.same(first.body.messages, [], 'audit: nothing yet');
  t.ok(
    (await publishEach(client, 'events', bodies('before-', 8))) > 0,
    'messages past the group’s cursors on broker 2',
  );

  // the other tenant's instance with messages on broker 2
  await ok(other.call(0, 'PUT', '/topics/doomed', orders), 201, 'topic doomed');
  t.ok(
    (await publishEach(other, 'doomed', bodies('doomed-', 8))) > 0,
    'the instance has messages on broker 2',
  );
  const queuesDir = join(cluster.options.dataDir, 'b2', 'broker-2', 'consumequeue');
  const instanceQueues = () =>
    readdirSync(queuesDir)
      .map((name) => decodeURIComponent(name))
      .filter((name) => name.startsWith(`${other.tenant.tenantId}/${other.tenant.instanceId}/`));

  const broker2 = cluster.brokers.get(2);
  if (broker2 === undefined) throw new Error('no broker 2');
  await cluster.terminate(broker2);
  await waitFor(
    'the gateway to see broker 2 down',
    async () => {
      const body = (await (await fetch(`${cluster.gateways[0].url}/readyz`)).json()) as {
        brokers: { id: number; state: string }[];
      };
      return body.brokers.some((b) => b.id === 2 && b.state === 'down');
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  // stopped cleanly, so its queue files are written
  t.ok(instanceQueues().length > 0, 'broker 2 holds queues of the instance');
  await ok(client.call(0, 'DELETE', '/topics/orders'), 204, 'topic deleted');
  await ok(client.call(0, 'DELETE', '/groups/audit'), 204, 'group deleted');
  await ok(other.call(0, 'DELETE', ''), 204, 'instance deleted');
  t.match(
    cluster.gateways[0].output(),
    /"brokerId":2,"drop":"topic [^"]*\/orders".*left for it/,
    'the gateway logs the drop it left for broker 2',
  );
  const drops = new MetaKeys().pendingDrops(2);
  // the instance's deletion drops its topic, then the instance
  t.equal(await redis.hlen(drops), 4, 'four drops wait for broker 2');

  await cluster.startBroker(2);
  t.equal(await redis.hlen(drops), 0, 'broker 2 applied them before it served');
  await waitFor(
    'the gateway to see broker 2 ready',
    async () => {
      const body = (await (await fetch(`${cluster.gateways[0].url}/readyz`)).json()) as {
        brokers: { id: number; state: string }[];
      };
      return body.brokers.some((b) => b.id === 2 && b.state === 'ready');
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  t.same(instanceQueues(), [], 'the deleted instance’s queues are gone from broker 2');

  t.test('the topic created again has none of the old messages', async (t) => {
    t.equal((await client.call(0, 'PUT', '/topics/orders', orders)).status, 201, 'created again');
    t.ok((await publishEach(client, 'orders', bodies('new-', 8))) > 0, 'new messages on broker 2');
    // due after the old delayed ones: broker 2 dispatches those first if it still has them
    const freshDueMs = Math.max(oldDueMs, Date.now()) + 1000;
    t.ok(
      (await publishEach(client, 'orders', bodies('new-delayed-', 4), freshDueMs)) > 0,
      'new delayed messages on broker 2',
    );
    const expected = 12;
    const received = await drain(
      client,
      'orders',
      'readers',
      (got) => got.filter((body) => body.startsWith('new-')).length === expected,
    );
    t.same(
      received.filter((body) => body.startsWith('old-')),
      [],
      'no message of the deleted topic',
    );
    t.equal(received.length, expected, 'each new message once');
    const stats = await client.call(0, 'GET', '/topics/orders/stats');
    const stored = (stats.body.queues as { maxOffset: number }[]).reduce(
      (n, q) => n + q.maxOffset,
      0,
    );
    t.equal(stored, expected, 'the queues hold the new messages only (broker 2 dropped the old)');
  });

  t.test('the group created again starts from its creation', async (t) => {
    t.equal((await client.call(0, 'PUT', '/groups/audit', {})).status, 201, 'created again');
    t.ok(
      (await publishEach(client, 'events', bodies('after-', 8))) > 0,
      'new messages on broker 2',
    );
    const received = await drain(
      client,
      'events',
      'audit',
      (got) => got.filter((body) => body.startsWith('after-')).length === 8,
    );
    t.same(
      received.filter((body) => body.startsWith('before-')),
      [],
      'nothing published before the group was created again',
    );
  });
});

/** Receives and acks until `done` holds for what was received and the group has nothing left
 *  (so whatever else a broker would hand out has been handed out); answers every body. */
async function drain(
  client: TenantClient,
  topic: string,
  group: string,
  done: (bodies: string[]) => boolean,
): Promise<string[]> {
  const bodies: string[] = [];
  await waitFor(
    `${group} to receive everything of ${topic}`,
    async () => {
      const res = await client.call(0, 'POST', `/topics/${topic}/groups/${group}/receive`, {
        maxMessages: 32,
        waitSeconds: 1,
      });
      if (res.status !== 200) return false;
      const handles: string[] = [];
      for (const m of res.body.messages as { body: string; receiptHandle: string }[]) {
        bodies.push(m.body);
        handles.push(m.receiptHandle);
      }
      if (handles.length > 0)
        await client.call(0, 'POST', `/topics/${topic}/groups/${group}/ack`, {
          receiptHandles: handles,
        });
      if (!done(bodies)) return false;
      const stats = await client.call(0, 'GET', `/topics/${topic}/groups/${group}/stats`);
      return stats.status === 200 && stats.body.backlog === 0 && stats.body.inflight === 0;
    },
    { timeoutMs: 90_000, intervalMs: 0 },
  );
  return bodies;
}
