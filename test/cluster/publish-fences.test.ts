// A publish whose answer is lost (real processes: 2 brokers, 1 gateway; broker 1 behind a proxy
// that lets a publish through, drops its answer and cuts the connection): broker 1 stored the
// message, the gateway sends it to broker 2 and the client gets 200 — and because the gateway
// left a fence for broker 1, which withdraws its copy, the message is delivered exactly once.
// Broker 1 stays alive throughout (the partition case); the proxy passes everything again after
// the cut, so broker 1's other messages are delivered as usual. A FIFO batch split over both
// brokers whose broker-1 answer is lost answers 503 (FIFO does not fail over) although broker 2
// stored its part: both parts are fenced, so the client's retry is delivered once — unless every
// message of broker 2's part carries a dedupId: that part is left, and the retry answers it as a
// duplicate (a consumer may have taken it meanwhile).
import t from 'tap';
import { Redis } from 'ioredis';
import { MetaKeys } from '../../src/meta/index.js';
import { brokerMacKey } from '../../src/cli/broker-setup.js';
import { MessageIdCodec, shardingHash } from '../../src/protocol/index.js';
import { startTestCluster, tenantOf } from '../helpers/cluster.js';
import { startRpcProxy } from '../helpers/rpc-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

// three processes started from the sources on a shared 2-core machine: minutes, not seconds
t.setTimeout(300_000);

/** Receives and acks (group g) until `count` messages came and a receive finds nothing more;
 *  every body received, repeats included. */
async function drain(
  client: Awaited<ReturnType<typeof tenantOf>>,
  topic: string,
  count: number,
): Promise<string[]> {
  const received: string[] = [];
  await waitFor(
    'every message, then nothing more',
    async () => {
      const res = await client.call(0, 'POST', `/topics/${topic}/groups/g/receive`, {
        maxMessages: 32,
        waitSeconds: 1,
      });
      if (res.status !== 200) return false;
      const handles: string[] = [];
      for (const m of res.body.messages) {
        received.push(m.body);
        handles.push(m.receiptHandle);
      }
      if (handles.length > 0) {
        await client.call(0, 'POST', `/topics/${topic}/groups/g/ack`, { receiptHandles: handles });
        return false;
      }
      return received.length >= count;
    },
    { timeoutMs: 60_000, intervalMs: 0 },
  );
  return received;
}

t.test('a failed-over publish whose answer was lost is delivered once', async (t) => {
  const proxy = await startRpcProxy(t);
  const cluster = await startTestCluster(t, { brokers: 0, gateways: 0 });
  const first = cluster.startBroker(1, { WHARF_BROKER_ADVERTISE: `127.0.0.1:${proxy.port}` });
  // the broker's RPC port is known once it was spawned: the proxy forwards there
  await waitFor('broker 1 spawned', () => cluster.brokers.get(1)?.rpcPort);
  proxy.target = cluster.brokers.get(1)?.rpcPort;
  await first;
  await cluster.startBroker(2);
  await cluster.startGateway();
  const client = await tenantOf(cluster);
  t.equal(
    (await client.call(0, 'PUT', '/topics/pay', { messageType: 'NORMAL', queueCount: 4 })).status,
    201,
  );
  t.equal((await client.call(0, 'PUT', '/groups/g', {})).status, 201);

  const published: string[] = [];
  const publish = async (body: string) => {
    const res = await client.call(0, 'POST', '/topics/pay/messages', { messages: [{ body }] });
    t.equal(res.status, 200, `${body} acknowledged`);
    published.push(body);
  };
  for (let i = 0; i < 8; i++) await publish(`before-${i}`);
  proxy.arm();
  for (let i = 0; proxy.cut === 0; i++) {
    await publish(`during-${i}`);
    if (i > 64) throw new Error('no publish reached broker 1 while armed');
  }
  for (let i = 0; i < 8; i++) await publish(`after-${i}`);

  // broker 1 applies the fence the gateway left (it polls every second)
  const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  await waitFor(
    'broker 1 to apply the fence',
    async () => (await redis.hlen(new MetaKeys().publishFences(1))) === 0,
    { timeoutMs: 30_000 },
  );
  t.match(
    cluster.brokers.get(1)?.output() ?? '',
    /withdrew messages/,
    'broker 1 withdrew its copy',
  );

  // every message, then a receive finding nothing more (the withdrawn copy stays withdrawn)
  const received = await drain(client, 'pay', published.length);
  const twice = received.filter((body, i) => received.indexOf(body) !== i);
  t.same(twice, [], 'no message delivered twice');
  t.equal(received.length, published.length, `each of the ${published.length} delivered once`);
});

t.test('a batch over two brokers answered 503 is stored once when retried', async (t) => {
  const proxy = await startRpcProxy(t);
  const cluster = await startTestCluster(t, { brokers: 0, gateways: 0 });
  const first = cluster.startBroker(1, { WHARF_BROKER_ADVERTISE: `127.0.0.1:${proxy.port}` });
  await waitFor('broker 1 spawned', () => cluster.brokers.get(1)?.rpcPort);
  proxy.target = cluster.brokers.get(1)?.rpcPort;
  await first;
  await cluster.startBroker(2);
  await cluster.startGateway();
  const client = await tenantOf(cluster);
  const ids = new MessageIdCodec(brokerMacKey(cluster.options.masterKey));
  t.equal(
    (await client.call(0, 'PUT', '/topics/seq', { messageType: 'FIFO', queueCount: 2 })).status,
    201,
  );
  t.equal((await client.call(0, 'PUT', '/groups/g', {})).status, 201);
  // one sharding key for each queue: the two queues are placed on the two brokers
  const keyOf = (queueId: number) => {
    for (let k = 0; ; k++) if (shardingHash(`key-${k}`) % 2 === queueId) return `key-${k}`;
  };
  const batch = {
    messages: [
      { body: 'q0', shardingKey: keyOf(0) },
      { body: 'q1', shardingKey: keyOf(1) },
    ],
  };

  proxy.arm(); // broker 1 stores its part; its answer is lost
  const refused = await client.call(0, 'POST', '/topics/seq/messages', batch);
  t.equal(refused.status, 503, 'the batch answers 503 (FIFO waits for its broker)');
  t.equal(proxy.cut, 1, 'broker 1’s answer was the one lost');
  /** The client sends a batch again, as a 503 says it may, until it is stored. */
  const retry = (body: unknown) =>
    waitFor(
      'the retry to be stored',
      async () => {
        const res = await client.call(0, 'POST', '/topics/seq/messages', body);
        return res.status === 200 ? res : null;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  const stored = await retry(batch);
  t.same(
    stored.body.messages.map((m: { messageId: string }) => ids.brokerOf(m.messageId)).sort(),
    [1, 2],
    'the batch went to both brokers',
  );

  const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const keys = new MetaKeys();
  const fencesApplied = () =>
    waitFor(
      'the brokers to apply their fences',
      async () =>
        (await redis.hlen(keys.publishFences(1))) + (await redis.hlen(keys.publishFences(2))) === 0,
      { timeoutMs: 30_000 },
    );
  await fencesApplied();
  const received = await drain(client, 'seq', 2);
  t.same(received.sort(), ['q0', 'q1'], 'each message of the batch delivered once');

  // The same with dedupIds: the part broker 2 stored is not fenced. A consumer may take it
  // before the client's retry, which answers it as a duplicate (its messageId) rather than
  // storing it again: each message is delivered once.
  const deduped = {
    messages: [
      { body: 'd0', shardingKey: keyOf(0), dedupId: 'dedup-0' },
      { body: 'd1', shardingKey: keyOf(1), dedupId: 'dedup-1' },
    ],
  };
  proxy.arm();
  const refusedAgain = await client.call(0, 'POST', '/topics/seq/messages', deduped);
  t.equal(refusedAgain.status, 503, 'the batch with dedupIds answers 503 too');
  await fencesApplied();
  const early = await client.call(0, 'POST', '/topics/seq/groups/g/receive', {
    maxMessages: 32,
    waitSeconds: 5,
  });
  t.equal(early.status, 200);
  t.equal(early.body.messages.length, 1, 'broker 2’s part is received before the retry');
  const taken = early.body.messages[0] as {
    body: string;
    messageId: string;
    receiptHandle: string;
  };
  t.equal(ids.brokerOf(taken.messageId), 2);
  await client.call(0, 'POST', '/topics/seq/groups/g/ack', {
    receiptHandles: [taken.receiptHandle],
  });
  const retried = await retry(deduped);
  const results = retried.body.messages as { messageId: string; duplicate?: boolean }[];
  t.match(
    results.find((r) => r.messageId === taken.messageId),
    { duplicate: true },
    'the retry answers the part received as a duplicate, under its messageId',
  );
  const later = await drain(client, 'seq', 1);
  t.same(
    [taken.body, ...later].sort(),
    ['d0', 'd1'],
    'each message of the batch with dedupIds delivered once',
  );
});
