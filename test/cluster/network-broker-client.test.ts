import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { isWharfError, WharfError } from '../../src/errors.js';
import type { Broker } from '../../src/broker/index.js';
import { MessageChannel, Worker } from 'node:worker_threads';
import {
  Http2BrokerServer,
  Http2RpcChannel,
  NetworkBrokerClient,
  PortBrokerServer,
  PortRpcChannel,
  TcpBrokerServer,
  TcpRpcChannel,
  type BrokerServerOptions,
  type ChannelOptions,
  type NetworkClientOptions,
  type RpcChannel,
} from '../../src/cluster/index.js';
import {
  FrameKind,
  FrameParser,
  decodeBrokerRpcError,
  encodeBrokerRpcRequest,
  encodeFrame,
} from '../../src/protocol/index.js';
import { groupOf, openTestBroker, text, topicOf } from '../helpers/broker.js';
import { startStallProxy } from '../helpers/stall-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

interface Server {
  close(): Promise<void>;
  destroy(): Promise<void>;
}

interface ListeningServer extends Server {
  start(): Promise<{ port: number }>;
}

interface Channel extends RpcChannel {
  readonly inFlight: number;
  readonly queued: number;
}

interface Transport {
  name: 'tcp' | 'http2' | 'thread';
  /** A server over `broker` and a channel to it; `port` for a listening transport. */
  connect(
    broker: Broker,
    options: { server?: BrokerServerOptions; channel?: ChannelOptions },
  ): Promise<{ server: Server; channel: Channel; port: number }>;
  /** A listening transport's server alone (to start one again on the same port). */
  listen?: (broker: Broker, options: BrokerServerOptions) => ListeningServer;
}

function listening(
  name: 'tcp' | 'http2',
  listen: (broker: Broker, options?: BrokerServerOptions) => ListeningServer,
  channel: (port: number, options?: ChannelOptions) => Channel,
): Transport {
  return {
    name,
    listen,
    connect: async (broker, options) => {
      const server = listen(broker, options.server);
      const { port } = await server.start();
      return { server, port, channel: channel(port, options.channel) };
    },
  };
}

const TRANSPORTS: Transport[] = [
  listening(
    'tcp',
    (broker, options) => new TcpBrokerServer(broker, options),
    (port, options) => new TcpRpcChannel({ host: '127.0.0.1', port, ...options }),
  ),
  listening(
    'http2',
    (broker, options) => new Http2BrokerServer(broker, options),
    (port, options) => new Http2RpcChannel({ host: '127.0.0.1', port, ...options }),
  ),
  {
    // both ends on this thread: the same frames and port semantics as across threads
    name: 'thread',
    connect: (broker, options) => {
      const { port1, port2 } = new MessageChannel();
      const server = new PortBrokerServer(broker, port2, options.server);
      return Promise.resolve({
        server,
        port: 0,
        channel: new PortRpcChannel(port1, options.channel),
      });
    },
  },
];

interface Rig {
  broker: Broker;
  server: Server;
  port: number;
  client: NetworkBrokerClient;
  channel: Channel;
}

async function rig(
  t: Test,
  transport: Transport,
  options: {
    server?: BrokerServerOptions;
    channel?: ChannelOptions;
    client?: NetworkClientOptions;
  } = {},
): Promise<Rig> {
  const broker = await openTestBroker(t);
  const { server, port, channel } = await transport.connect(broker, {
    server: options.server,
    channel: { minBackoffMs: 10, maxBackoffMs: 50, ...options.channel },
  });
  const client = new NetworkBrokerClient(channel, options.client);
  // teardowns run first-in first-out: the client and server go before the broker's directory
  t.teardown(async () => {
    await client.close();
    await server.close();
  });
  return { broker, server, port, client, channel };
}

function without<T extends object>(value: T, ...keys: string[]): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([key]) => !keys.includes(key)),
  ) as Partial<T>;
}

for (const transport of TRANSPORTS) {
  t.test(`${transport.name}: every BrokerClient call answers as in-process`, async (t) => {
    const { broker, client } = await rig(t, transport);
    const topic = topicOf();
    const group = groupOf({ maxDeliveryAttempts: 1 });
    t.same(await client.health(), await broker.health());

    const published = await client.publish(topic, [
      text('one', { tag: 'A', keys: ['k1'], properties: { p: 'v' } }),
      text('two', { tag: 'B', shardingKey: 's' }),
      { body: Buffer.from([0, 255, 1]), bodyEncoding: 'base64' },
    ]);
    t.equal(published.length, 3);
    const [first] = published;
    t.same(
      await client.getMessage(topic, first.messageId),
      await broker.getMessage(topic, first.messageId),
    );
    t.same(await client.queryByKey(topic, 'k1', 10), await broker.queryByKey(topic, 'k1', 10));
    const query = { fromMs: 0, toMs: Date.now() + 1000, limit: 2 };
    t.same(await client.queryByTime(topic, query), await broker.queryByTime(topic, query));

    const received = await client.receive(topic, group, { maxMessages: 10, waitMs: 0, tags: '*' });
    t.same(
      received.map((m) => m.body.toString('hex')).sort(),
      ['6f6e65', '74776f', '00ff01'].sort(),
      'bodies cross as raw bytes',
    );
    const one = received.find((m) => m.messageId === first.messageId);
    t.match(one, { tag: 'A', keys: ['k1'], properties: { p: 'v' }, shardingKey: null });
    t.same(await client.trace(topic, first.messageId), await broker.trace(topic, first.messageId));
    t.same(
      without(
        await client.groupStats(topic, group),
        'deliveredRatePerSecond',
        'ackedRatePerSecond',
        'oldestUnackedAgeMs',
      ),
      without(
        await broker.groupStats(topic, group),
        'deliveredRatePerSecond',
        'ackedRatePerSecond',
        'oldestUnackedAgeMs',
      ),
    );
    t.same(
      without(await client.topicStats(topic), 'publishRatePerSecond'),
      without(await broker.topicStats(topic), 'publishRatePerSecond'),
    );

    const [a, b, c] = received;
    const visible = await client.changeVisibility(topic, group, c.receiptHandle, 0);
    t.equal(typeof visible.nextVisibleTime, 'number');
    const acks = await client.ack(topic, group, [a.receiptHandle, b.receiptHandle, 'bogus']);
    t.same(acks, [
      { receiptHandle: a.receiptHandle, ok: true },
      { receiptHandle: b.receiptHandle, ok: true },
      { receiptHandle: 'bogus', ok: false, code: 'InvalidReceiptHandle' },
    ]);
    t.same(
      await client.ack(topic, group, [a.receiptHandle]),
      await broker.ack(topic, group, [a.receiptHandle]),
    );

    await client.resetGroup(topic, group, 'earliest');
    t.same(await client.deadLetters(group, 10), await broker.deadLetters(group, 10));
    t.same(
      await client.resendDeadLetters(group, ['983993489A74081AC50541D14DE8B028']),
      await broker.resendDeadLetters(group, ['983993489A74081AC50541D14DE8B028']),
    );
    await client.dropGroup(group);
    await client.dropTopic(topic);
    await client.dropInstance('t-gone', 'i-gone');
    const gone = await broker.getMessage(topic, first.messageId).catch((e: unknown) => e);
    t.ok(gone instanceof WharfError, 'the dropped topic answers an error in-process');
    await t.rejects(client.getMessage(topic, first.messageId), {
      code: gone instanceof WharfError ? gone.code : 'none',
    });
  });

  t.test(
    `${transport.name}: errors cross with their code, message and retriable flag`,
    async (t) => {
      const { broker, client } = await rig(t, transport);
      const topic = topicOf();
      await client.publish(topic, [text('x')]);
      const local = await broker.getMessage(topic, 'NOT-AN-ID').catch((error: unknown) => error);
      const remote = await client.getMessage(topic, 'NOT-AN-ID').catch((error: unknown) => error);
      t.ok(local instanceof WharfError && remote instanceof WharfError);
      if (!(local instanceof WharfError) || !(remote instanceof WharfError)) return;
      t.equal(remote.code, local.code);
      t.equal(remote.message, local.message);
      t.equal(remote.retriable, local.retriable);
      t.equal(remote.retryAfterMs, local.retryAfterMs);
    },
  );

  t.test(
    `${transport.name}: a parked receive aborted by the caller is freed at the broker`,
    async (t) => {
      const { broker, client } = await rig(t, transport);
      const topic = topicOf();
      await client.publish(topic, [text('x')]);
      const group = groupOf();
      await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
      const controller = new AbortController();
      const parked = client.receive(
        topic,
        group,
        { maxMessages: 1, waitMs: 30_000, tags: '*' },
        controller.signal,
      );
      await waitFor('the receive to park', () => broker.stats().parkedReceives === 1);
      controller.abort();
      t.same(await parked, [], 'an aborted receive answers nothing, as in-process');
      await waitFor('the broker to free it', () => broker.stats().parkedReceives === 0);
    },
  );

  t.test(`${transport.name}: a long poll answers as soon as a message lands`, async (t) => {
    const { broker, client } = await rig(t, transport);
    const topic = topicOf();
    const group = groupOf();
    await client.publish(topic, [text('first')]);
    await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    const parked = client.receive(topic, group, { maxMessages: 1, waitMs: 30_000, tags: '*' });
    await waitFor('the receive to park', () => broker.stats().parkedReceives === 1);
    await client.publish(topic, [text('second')]);
    t.same(
      (await parked).map((m) => m.body.toString()),
      ['second'],
    );
  });

  t.test(`${transport.name}: a missed deadline is Unavailable and frees the call`, async (t) => {
    const { broker, client } = await rig(t, transport, { client: { longPollMarginMs: -29_950 } });
    const topic = topicOf();
    const group = groupOf();
    await client.publish(topic, [text('x')]);
    // the message is taken at the broker itself: through the client this call would have the
    // same 50 ms deadline, which a loaded machine can miss
    await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    const error = await client
      .receive(topic, group, { maxMessages: 1, waitMs: 30_000, tags: '*' })
      .catch((e: unknown) => e);
    t.ok(isWharfError(error, 'Unavailable'), 'Unavailable');
    t.match(error, { retriable: true, message: /deadline/ });
    t.ok(isWharfError(error) && (error.retryAfterMs ?? 0) > 0, 'with a retry-after');
    await waitFor('the broker to free it', () => broker.stats().parkedReceives === 0);
  });

  t.test(`${transport.name}: calls over the bound wait for a slot`, async (t) => {
    const { broker, client, channel } = await rig(t, transport, { channel: { maxInFlight: 2 } });
    const topic = topicOf();
    const group = groupOf();
    await client.publish(topic, [text('x')]);
    await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    const controllers = [new AbortController(), new AbortController()];
    const parked = controllers.map((c) =>
      client.receive(topic, group, { maxMessages: 1, waitMs: 30_000, tags: '*' }, c.signal),
    );
    await waitFor('two receives to park', () => broker.stats().parkedReceives === 2);
    const health = client.health();
    await waitFor('the third call to queue', () => channel.queued === 1);
    t.equal(channel.inFlight, 2);
    controllers[0].abort();
    t.same(await health, await broker.health(), 'it runs once a slot is free');
    controllers[1].abort();
    t.same(await Promise.all(parked), [[], []]);
  });

  t.test(`${transport.name}: a killed server answers Unavailable, then it is back`, async (t) => {
    const { broker, server, port, client } = await rig(t, transport);
    const topic = topicOf();
    const group = groupOf();
    await client.publish(topic, [text('x')]);
    await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    const parked = client
      .receive(topic, group, { maxMessages: 1, waitMs: 30_000, tags: '*' })
      .catch((e: unknown) => e);
    await waitFor('the receive to park', () => broker.stats().parkedReceives === 1);
    await server.destroy();
    t.match(await parked, { code: 'Unavailable', retriable: true }, 'the call in flight');
    const down = await client.health().catch((e: unknown) => e);
    t.match(down, { code: 'Unavailable', retriable: true }, 'a new call');
    t.ok(isWharfError(down) && (down.retryAfterMs ?? 0) > 0);
    await waitFor('the broker to free the receive', () => broker.stats().parkedReceives === 0);
    // a port is given once: there is nothing to reconnect to (a new thread brings a new port)
    const listen = transport.listen;
    if (listen === undefined) return;
    const again = listen(broker, { port });
    await again.start();
    t.teardown(() => again.close());
    const answer = await waitFor('the client to reconnect', () =>
      client.health().catch(() => null),
    );
    t.same(answer, await broker.health());
  });

  t.test(`${transport.name}: a graceful server close answers the parked receives`, async (t) => {
    const { broker, server, client } = await rig(t, transport);
    const topic = topicOf();
    const group = groupOf();
    await client.publish(topic, [text('x')]);
    await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    const parked = client.receive(topic, group, { maxMessages: 1, waitMs: 30_000, tags: '*' });
    await waitFor('the receive to park', () => broker.stats().parkedReceives === 1);
    await server.close();
    t.same(await parked, []);
  });

  t.test(`${transport.name}: a closed client refuses new calls`, async (t) => {
    const { client } = await rig(t, transport);
    const published = client.publish(topicOf(), [text('x')]);
    await client.close();
    t.equal((await published).length, 1, 'the call in flight finished');
    await t.rejects(client.health(), { code: 'Unavailable' });
  });
}

t.test('tcp: a server over its in-flight bound sheds with Unavailable', async (t) => {
  const { broker, client } = await rig(t, TRANSPORTS[0], {
    server: { maxInFlight: 1, retryAfterMs: 70 },
  });
  const topic = topicOf();
  const group = groupOf();
  await client.publish(topic, [text('x')]);
  await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
  const controller = new AbortController();
  const parked = client.receive(
    topic,
    group,
    { maxMessages: 1, waitMs: 30_000, tags: '*' },
    controller.signal,
  );
  await waitFor('the receive to park', () => broker.stats().parkedReceives === 1);
  await t.rejects(client.health(), { code: 'Unavailable', retryAfterMs: 70 });
  controller.abort();
  await parked;
});

t.test('tcp: a server over its in-flight request bytes sheds with Unavailable', async (t) => {
  const { broker, client } = await rig(t, TRANSPORTS[0], {
    server: { maxInFlightBytes: 1024, retryAfterMs: 70 },
  });
  const topic = topicOf();
  const group = groupOf();
  const big = text('x'.repeat(2048));
  t.equal((await client.publish(topic, [big])).length, 1, 'a call alone is taken, however big');
  await client.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
  const controller = new AbortController();
  const parked = client.receive(
    topic,
    group,
    { maxMessages: 1, waitMs: 30_000, tags: '*' },
    controller.signal,
  );
  await waitFor('the receive to park', () => broker.stats().parkedReceives === 1);
  t.same(await client.health(), await broker.health(), 'a small call beside it is taken');
  await t.rejects(client.publish(topic, [big]), {
    code: 'Unavailable',
    retryAfterMs: 70,
    message: /bytes/,
  });
  controller.abort();
  await parked;
  // taken again once alone (a shed publish stores nothing, so it is safe to try until then)
  await waitFor('the big publish taken once it is alone', () =>
    client
      .publish(topic, [big])
      .then((results) => results.length === 1)
      .catch(() => false),
  );
});

t.test('tcp: a request for an unknown operation answers UnsupportedFormat', async (t) => {
  const { port } = await rig(t, TRANSPORTS[0]);
  const socket = connect({ host: '127.0.0.1', port });
  t.teardown(() => socket.destroy());
  const parser = new FrameParser();
  const answer = new Promise<ReturnType<FrameParser['push']>['frames'][number]>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      const [frame] = parser.push(chunk).frames;
      if (frame !== undefined) resolve(frame);
    }),
  );
  socket.write(
    encodeFrame({
      version: 1,
      kind: FrameKind.request,
      requestId: 7,
      op: 999,
      payload: Buffer.alloc(0),
    }),
  );
  const frame = await answer;
  t.equal(frame.kind, FrameKind.error);
  t.equal(frame.requestId, 7);
  t.match(decodeBrokerRpcError(frame), { status: 'ok', error: { code: 'UnsupportedFormat' } });
});

t.test('tcp: a connection whose path is lost is replaced after missed deadlines', async (t) => {
  const broker = await openTestBroker(t);
  const server = new TcpBrokerServer(broker);
  const { port } = await server.start();
  const proxy = await startStallProxy(t, port);
  const channel = new TcpRpcChannel({
    host: '127.0.0.1',
    port: proxy.port,
    minBackoffMs: 10,
    maxBackoffMs: 50,
    maxMissedDeadlines: 3,
  });
  const client = new NetworkBrokerClient(channel, { callTimeoutMs: 1000 });
  t.teardown(async () => {
    await client.close();
    await server.close();
  });
  t.same(await client.health(), await broker.health(), 'served through the proxy');
  // the broker's host vanished: no FIN, no RST, the calls just get no answer
  proxy.stall();
  for (let i = 0; i < 3; i++) {
    await t.rejects(client.health(), { code: 'Unavailable', message: /deadline/ }, `miss ${i}`);
  }
  // the broker is reachable again, but not through the connection whose path was lost
  proxy.heal();
  const answer = await waitFor(
    'a call to be answered again',
    () => client.health().catch(() => null),
    { timeoutMs: 20_000 },
  );
  t.same(answer, await broker.health(), 'answered through a new connection');
  t.ok(proxy.connections >= 2, `a new connection was opened (${proxy.connections})`);
});

t.test('a broker that cannot be reached is Unavailable at once', async (t) => {
  const channel = new TcpRpcChannel({ host: '127.0.0.1', port: 1, minBackoffMs: 1000 });
  const client = new NetworkBrokerClient(channel);
  await t.rejects(client.health(), { code: 'Unavailable' });
  await t.rejects(client.health(), { code: 'Unavailable', message: /backing off/ });
  await client.close();
});

t.test('thread: a broker on a worker thread serves; its end is Unavailable', async (t) => {
  const dir = t.testdir();
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('../helpers/port-broker-thread.ts', import.meta.url), {
    workerData: { dir, port: port2 },
    transferList: [port2],
  });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const serving = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the broker thread exited (${code})`)));
  });
  t.teardown(() => worker.terminate());
  const client = new NetworkBrokerClient(new PortRpcChannel(port1));
  // the calls' deadlines are the calls', not the thread's boot (seen missed under load)
  t.equal(await serving, 'serving');
  const topic = topicOf();
  const group = groupOf();
  const [published] = await client.publish(topic, [text('across threads')]);
  const [received] = await client.receive(topic, group, {
    maxMessages: 1,
    waitMs: 1000,
    tags: '*',
  });
  t.equal(received?.messageId, published.messageId);
  t.equal(received?.body.toString(), 'across threads');
  await worker.terminate();
  await exited;
  await t.rejects(client.health(), { code: 'Unavailable' }, 'the thread is gone');
  await client.close();
});

t.test('thread: nothing queued behind a corrupt message is run', async (t) => {
  const broker = await openTestBroker(t);
  const { port1, port2 } = new MessageChannel();
  const server = new PortBrokerServer(broker, port2);
  t.teardown(() => server.close());
  const topic = topicOf();
  const closed = new Promise((resolve) => port1.once('close', resolve));
  port1.ref(); // a port without a message listener does not keep the process waiting for it
  // both are queued before the server's port reads either: the first closes the port
  port1.postMessage('not frames');
  const request = encodeBrokerRpcRequest('publish', 1, { topic, messages: [text('late')] });
  port1.postMessage(new Uint8Array(request));
  await closed;
  // a publish started before this one would be stored by the time this one is answered
  await broker.publish(topic, [text('marker')]);
  t.equal((await broker.topicStats(topic)).messagesIn, 1, 'only the marker was stored');
});

t.test('tcp: a cancelled check answers the offers it made as the cancel came', async (t) => {
  // a stand-in broker whose check, as its cancel arrives, has just offered a half (its offer
  // counted, as a real broker's would be: it cannot be taken back)
  const offered = {
    transactionId: '5A1F00C3E2B94D7788A01F2E3D4C5B6A',
    messageId: '983993489A74081AC50541D14DE8B028',
    body: Buffer.from('pay'),
    bodyEncoding: 'utf8',
    tag: null,
    keys: [],
    properties: {},
    shardingKey: null,
    publishTime: 1,
    checkCount: 1,
    nextCheckTime: 2,
  };
  const standIn = {
    checkTransactions: (_t: unknown, _r: unknown, signal?: AbortSignal) =>
      new Promise((resolve) => signal?.addEventListener('abort', () => resolve([offered]))),
    health: () => Promise.resolve({ ready: true }),
  } as unknown as Broker;
  const server = new TcpBrokerServer(standIn);
  const { port } = await server.start();
  const client = new NetworkBrokerClient(new TcpRpcChannel({ host: '127.0.0.1', port }));
  t.teardown(async () => {
    await client.close();
    await server.close();
  });
  const controller = new AbortController();
  const check = client.checkTransactions(
    topicOf({ messageType: 'TRANSACTION' }),
    { maxMessages: 16, waitMs: 30_000 },
    controller.signal,
  );
  await client.health(); // the check is on the wire, parked
  controller.abort();
  t.match(
    (await check).map((m) => m.transactionId),
    [offered.transactionId],
    'the offer reaches the caller',
  );
});
