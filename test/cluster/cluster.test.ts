// A cluster of real processes (2 gateways, 3 brokers, a private Redis): messages published
// through one gateway are received, queried and acked through the other, spread over the
// brokers; a second broker with a live id is refused; a broker added later takes new topics'
// queues; with Redis stopped for 3 s the gateways keep serving the routes they know.
import t from 'tap';
import { MessageIdCodec } from '../../src/protocol/index.js';
import { brokerMacKey } from '../../src/cli/broker-setup.js';
import { startTestCluster, tenantOf } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait-for.js';

// five processes started from the sources on a shared 2-core machine: minutes, not seconds
t.setTimeout(300_000);

t.test('a 2-gateway, 3-broker cluster', async (t) => {
  const cluster = await startTestCluster(t, { brokers: 3, gateways: 2 });
  const client = await tenantOf(cluster);
  const ids = new MessageIdCodec(brokerMacKey(cluster.options.masterKey));

  t.test('/readyz of a gateway lists the brokers it reaches', async (t) => {
    const ready = await fetch(`${cluster.gateways[1].url}/readyz`);
    t.equal(ready.status, 200);
    const body = (await ready.json()) as { brokers: { id: number; state: string }[] };
    t.same(
      body.brokers.map((b) => [b.id, b.state]),
      [
        [1, 'ready'],
        [2, 'ready'],
        [3, 'ready'],
      ],
    );
  });

  t.test('published through one gateway, consumed through the other', async (t) => {
    t.equal(
      (await client.call(0, 'PUT', '/topics/orders', { messageType: 'NORMAL', queueCount: 6 }))
        .status,
      201,
    );
    t.equal((await client.call(1, 'PUT', '/groups/billing', {})).status, 201);
    const bodies = Array.from({ length: 30 }, (_, i) => `order-${i}`);
    const published: string[] = [];
    for (let i = 0; i < bodies.length; i += 5) {
      const res = await client.call(i % 2, 'POST', '/topics/orders/messages', {
        messages: bodies.slice(i, i + 5).map((body) => ({ body, keys: [body] })),
      });
      t.equal(res.status, 200, 'published');
      published.push(...res.body.messages.map((m: { messageId: string }) => m.messageId));
    }
    const brokersUsed = new Set(published.map((id) => ids.brokerOf(id)));
    t.same([...brokersUsed].sort(), [1, 2, 3], 'the queues spread over the three brokers');

    const seen = new Map<string, string>();
    await waitFor(
      'every message through the second gateway',
      async () => {
        const res = await client.call(1, 'POST', '/topics/orders/groups/billing/receive', {
          maxMessages: 32,
          waitSeconds: 2,
        });
        if (res.status !== 200) throw new Error(`receive ${res.status}`);
        const handles: string[] = [];
        for (const m of res.body.messages) {
          seen.set(m.body, m.messageId);
          handles.push(m.receiptHandle);
        }
        if (handles.length > 0) {
          const acked = await client.call(0, 'POST', '/topics/orders/groups/billing/ack', {
            receiptHandles: handles,
          });
          t.ok(
            acked.body.results.every((r: { ok: boolean }) => r.ok),
            'acked through the first gateway',
          );
        }
        return seen.size === bodies.length;
      },
      { timeoutMs: 60_000, intervalMs: 0 },
    );
    t.same([...seen.keys()].sort(), [...bodies].sort(), 'each message once');

    const one = published[7];
    const view = await client.call(1, 'GET', `/topics/orders/messages/${one}`);
    t.equal(view.status, 200, 'found by id on its broker');
    t.equal(view.body.messageId, one);
    const byKey = await client.call(1, 'GET', '/topics/orders/messages?key=order-7');
    t.equal(byKey.body.messages.length, 1, 'found by key across the brokers');
    const stats = await client.call(0, 'GET', '/topics/orders/stats');
    t.equal(stats.body.messagesIn, 30, 'stats summed over the brokers');
    const group = await client.call(0, 'GET', '/topics/orders/groups/billing/stats');
    t.equal(group.body.backlog, 0, 'nothing left');
  });

  t.test('receives parked over the brokers: a delivery nobody saw uses no attempt', async (t) => {
    t.equal(
      (await client.call(0, 'PUT', '/topics/spread', { messageType: 'NORMAL', queueCount: 6 }))
        .status,
      201,
    );
    // one attempt: a delivery counted without a consumer seeing it would dead-letter the message
    t.equal((await client.call(1, 'PUT', '/groups/once', { maxDeliveryAttempts: 1 })).status, 201);
    const total = 48;
    const got = new Map<string, number>();
    const stop = new AbortController();
    const consumer = async (gateway: number) => {
      while (!stop.signal.aborted && got.size < total) {
        const res = await client.call(gateway, 'POST', '/topics/spread/groups/once/receive', {
          maxMessages: 4,
          waitSeconds: 2,
        });
        if (res.status !== 200) throw new Error(`receive ${res.status}`);
        const handles: string[] = [];
        for (const m of res.body.messages) {
          got.set(m.body, m.deliveryAttempt);
          handles.push(m.receiptHandle);
        }
        if (handles.length > 0)
          await client.call(gateway, 'POST', '/topics/spread/groups/once/ack', {
            receiptHandles: handles,
          });
      }
    };
    const consumers = [0, 1, 0, 1, 0, 1].map((gateway) => consumer(gateway));
    for (let i = 0; i < total; i += 6) {
      // sharding keys spread each batch over the queues, so over the brokers
      const res = await client.call(i % 2, 'POST', '/topics/spread/messages', {
        messages: Array.from({ length: 6 }, (_, k) => ({
          body: `m-${i + k}`,
          shardingKey: `k-${i + k}`,
        })),
      });
      t.equal(res.status, 200);
    }
    await waitFor('every message received', () => got.size === total, { timeoutMs: 60_000 });
    stop.abort();
    await Promise.all(consumers);
    t.same(
      [...got.values()].filter((attempt) => attempt !== 1),
      [],
      'each on its first attempt',
    );
    const dead = await client.call(0, 'GET', '/groups/once/dead-letters');
    t.same(dead.body.messages, [], 'none dead-lettered unseen');
  });

  t.test('FIFO: a sharding key keeps its order across the cluster', async (t) => {
    t.equal(
      (await client.call(0, 'PUT', '/topics/fifo', { messageType: 'FIFO', queueCount: 3 })).status,
      201,
    );
    t.equal((await client.call(0, 'PUT', '/groups/seq', {})).status, 201);
    for (let i = 0; i < 6; i++) {
      const res = await client.call(i % 2, 'POST', '/topics/fifo/messages', {
        messages: [{ body: `step-${i}`, shardingKey: 'account-1' }],
      });
      t.equal(res.status, 200);
    }
    const order: string[] = [];
    await waitFor(
      'the six steps in order',
      async () => {
        const res = await client.call(1, 'POST', '/topics/fifo/groups/seq/receive', {
          waitSeconds: 2,
        });
        for (const m of res.body.messages) {
          order.push(m.body);
          await client.call(1, 'POST', '/topics/fifo/groups/seq/ack', {
            receiptHandles: [m.receiptHandle],
          });
        }
        return order.length >= 6;
      },
      { timeoutMs: 60_000, intervalMs: 0 },
    );
    t.same(order, ['step-0', 'step-1', 'step-2', 'step-3', 'step-4', 'step-5']);
  });

  t.test('a second broker with a live id is refused', async (t) => {
    const second = await cluster.startBrokerExpectingRefusal(2);
    t.equal(second.code, 1, 'exits 1');
    t.match(second.output, /broker id 2 is held by a live broker at 127\.0\.0\.1:\d+/);
    const ready = await fetch(`${cluster.gateways[0].url}/readyz`);
    t.equal(ready.status, 200, 'the cluster serves on');
  });

  t.test('a broker added later takes the new topics', async (t) => {
    await cluster.startBroker(4);
    await waitFor(
      'both gateways to see broker 4',
      async () => {
        for (const gateway of cluster.gateways) {
          const body = (await (await fetch(`${gateway.url}/readyz`)).json()) as {
            brokers: { id: number; state: string }[];
          };
          if (!body.brokers.some((b) => b.id === 4 && b.state === 'ready')) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    t.equal(
      (await client.call(1, 'PUT', '/topics/fresh', { messageType: 'NORMAL', queueCount: 2 }))
        .status,
      201,
    );
    const res = await client.call(1, 'POST', '/topics/fresh/messages', {
      messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }, { body: 'd' }],
    });
    const brokers = res.body.messages.map((m: { messageId: string }) => ids.brokerOf(m.messageId));
    t.ok(brokers.includes(4), `the new topic uses broker 4 (got ${brokers.join(',')})`);
  });

  t.test('with Redis stopped for 3 s the warm routes keep serving', async (t) => {
    t.equal((await client.call(0, 'PUT', '/groups/outage', {})).status, 201);
    // warm: credentials, topic, group and placement cached on gateway 0
    await client.call(0, 'POST', '/topics/orders/groups/outage/receive', { waitSeconds: 0 });
    const warm = await client.call(0, 'POST', '/topics/orders/messages', {
      messages: [{ body: 'before' }],
    });
    t.equal(warm.status, 200);
    await cluster.stopRedis({ holdPort: true });
    const stoppedAt = Date.now();
    const during = await client.call(0, 'POST', '/topics/orders/messages', {
      messages: [{ body: 'during' }],
    });
    t.equal(during.status, 200, 'publish without Redis');
    const received: string[] = [];
    await waitFor(
      'both messages without Redis',
      async () => {
        const res = await client.call(0, 'POST', '/topics/orders/groups/outage/receive', {
          waitSeconds: 1,
        });
        t.equal(res.status, 200, 'receive without Redis');
        received.push(...res.body.messages.map((m: { body: string }) => m.body));
        return received.length >= 2;
      },
      { timeoutMs: 10_000, intervalMs: 0 },
    );
    t.same(received.sort(), ['before', 'during']);
    await waitFor('3 s of outage', () => Date.now() - stoppedAt >= 3000, { intervalMs: 50 });
    await cluster.startRedis();
    await waitFor(
      'every broker ready again after Redis is back',
      async () => {
        const res = await fetch(`${cluster.gateways[1].url}/readyz`).catch(() => null);
        if (res?.status !== 200) return false;
        const body = (await res.json()) as { brokers: { state: string }[] };
        return body.brokers.every((b) => b.state === 'ready');
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const after = await client.call(1, 'POST', '/topics/orders/messages', {
      messages: [{ body: 'after' }],
    });
    t.equal(after.status, 200, 'and serves on after it');
  });
});
