// A receive aborted as the broker pops (a cluster gateway took another broker's answer) hides
// nothing: the server gives what it popped back at once, and so does a client that gets a late
// answer after its cancel — and a delivery nobody saw does not count as an attempt (a message
// would otherwise reach the dead-letter queue without ever being seen).
import t from 'tap';
import type { BrokerClient } from '../../src/cluster/index.js';
import {
  NetworkBrokerClient,
  TcpBrokerServer,
  TcpRpcChannel,
  dispatchBrokerRpc,
  returnUnseen,
  type RpcChannel,
} from '../../src/cluster/index.js';
import { WharfError } from '../../src/errors.js';
import type { ReceivedMessage } from '../../src/model/index.js';
import {
  decodeBrokerRpcResponse,
  decodeFrame,
  encodeBrokerRpcRequest,
  encodeBrokerRpcResponse,
  type Frame,
} from '../../src/protocol/index.js';
import { groupOf, openTestBroker, text, topicOf } from '../helpers/broker.js';
import { waitFor } from '../helpers/wait-for.js';

function frameOf(bytes: Buffer): Frame {
  const decoded = decodeFrame(bytes);
  if (decoded.status !== 'ok') throw new Error('bad frame');
  return decoded.frame;
}

t.test('the server releases what a receive popped as it was aborted', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf();
  const group = groupOf();
  await broker.publish(topic, [text('one')]);
  const controller = new AbortController();
  // the broker pops, then the caller's cancel lands before the answer leaves
  const racing: BrokerClient = Object.assign(Object.create(broker) as BrokerClient, {
    receive: async (...args: Parameters<BrokerClient['receive']>) => {
      const popped = await broker.receive(args[0], args[1], args[2]);
      controller.abort(new Error('cancelled by the caller'));
      return popped;
    },
  });
  const request = encodeBrokerRpcRequest('receive', 1, {
    topic,
    group,
    request: { maxMessages: 4, waitMs: 0, tags: '*', invisibleMs: 60_000 },
  });
  const answer = frameOf(await dispatchBrokerRpc(racing, frameOf(request), controller.signal));
  const decoded = decodeBrokerRpcResponse('receive', answer);
  t.same(decoded.status === 'ok' ? decoded.response : null, [], 'the aborted call answers none');
  const again = await broker.receive(topic, group, { maxMessages: 4, waitMs: 0, tags: '*' });
  t.equal(again.length, 1, 'visible again at once, not after its 60 s invisibility');
  t.equal(again[0].deliveryAttempt, 1, 'the aborted delivery does not count: nobody saw it');
});

t.test('a late answer after the cancel is released by the client', async (t) => {
  const broker = await openTestBroker(t);
  const server = new TcpBrokerServer(broker);
  const { port } = await server.start();
  t.teardown(() => server.close());
  const topic = topicOf();
  const group = groupOf();
  await broker.publish(topic, [text('late')]);
  const popped = await broker.receive(topic, group, {
    maxMessages: 1,
    waitMs: 0,
    tags: '*',
    invisibleMs: 60_000,
  });
  // a channel that delivers the broker's answer only after the caller's abort
  const releasedVia = new TcpRpcChannel({ host: '127.0.0.1', port });
  t.teardown(() => releasedVia.close());
  let late: ((frame: Frame) => void) | undefined;
  const channel: RpcChannel = {
    call: (requestId, op, bytes, signal, onLateAnswer) => {
      if (op !== 'receive') return releasedVia.call(requestId, op, bytes, signal);
      late = onLateAnswer;
      return new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
    },
    close: () => releasedVia.close(),
  };
  const client = new NetworkBrokerClient(channel);
  const controller = new AbortController();
  const receiving = client.receive(
    topic,
    group,
    { maxMessages: 1, waitMs: 5000, tags: '*' },
    controller.signal,
  );
  controller.abort();
  t.same(await receiving, [], 'the aborted receive answers none');
  late?.(frameOf(encodeBrokerRpcResponse('receive', 9, popped)));
  await waitFor('the late message visible again', async () => {
    const found = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    return found.length === 1 && found[0].deliveryAttempt === 1;
  });
  t.pass('given back through the broker, the delivery not counted');
});

t.test('a delivery given back unseen uses no attempt: none goes to the dead letters', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf({ maxDeliveryAttempts: 1 });
  await broker.publish(topic, [text('only one attempt')]);
  const request = { maxMessages: 4, waitMs: 0, tags: '*', invisibleMs: 60_000 };
  for (let round = 0; round < 3; round++) {
    const popped = await broker.receive(topic, group, request);
    t.equal(popped[0]?.deliveryAttempt, 1, `round ${round}: its first attempt still`);
    await broker.returnMessages(
      topic,
      group,
      popped.map((m) => m.receiptHandle),
    );
    await t.rejects(
      broker.ack(topic, group, [popped[0].receiptHandle]).then((r) => {
        if (r[0].ok) throw new Error('acked');
        throw new Error(r[0].code);
      }),
      { message: 'ReceiptHandleExpired' },
      'the handle given back is over',
    );
  }
  const [last] = await broker.receive(topic, group, request);
  t.equal(last?.body.toString(), 'only one attempt');
  t.ok((await broker.ack(topic, group, [last.receiptHandle]))[0].ok);
  t.same((await broker.deadLetters(group, 10)).messages, [], 'never dead-lettered');
});

t.test('a first delivery given back is read again as delivered, never passed over', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const group = groupOf();
  await broker.publish(topic, [text('tagged', { tag: 'A' })]);
  const [popped] = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: 'A' });
  await broker.returnMessages(topic, group, [popped.receiptHandle]);
  // back at attempt 0, like an offset replay put in flight unread: a receive of another tag must
  // not take it for one its read passes over (done for the group, never delivered)
  const other = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: 'B' });
  const mine = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: 'A' });
  t.same(
    [...other, ...mine].map((m) => [m.body.toString(), m.deliveryAttempt]),
    [['tagged', 1]],
    'delivered once more, on its first attempt',
  );
});

t.test('a broker without returnMessages (a rolling upgrade) still gets them back', async (t) => {
  const calls: string[] = [];
  const older = {
    returnMessages: () => Promise.reject(new WharfError('UnsupportedFormat', 'operation 22')),
    changeVisibility: (_t: unknown, _g: unknown, handle: string, ms: number) => {
      calls.push(`${handle}:${ms}`);
      return Promise.resolve({ receiptHandle: handle, nextVisibleTime: 0 });
    },
  };
  const received = ['h1', 'h2'].map((receiptHandle) => ({ receiptHandle }) as ReceivedMessage);
  await returnUnseen(older, topicOf(), groupOf(), received);
  t.same(calls, ['h1:0', 'h2:0'], 'released by a visibility change instead');
});

t.test('a give-back reaching a closing broker is served, other calls shed', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf();
  const group = groupOf();
  await broker.publish(topic, [text('taken as the broker stops')]);
  // a call still running holds the server's close open: the window a late give-back lands in
  let finishStats: (() => void) | undefined;
  const statsRunning = new Promise<void>((resolve) => (finishStats = resolve));
  let statsStarted: (() => void) | undefined;
  const started = new Promise<void>((resolve) => (statsStarted = resolve));
  const slow: BrokerClient = Object.assign(Object.create(broker) as BrokerClient, {
    topicStats: async (...args: Parameters<BrokerClient['topicStats']>) => {
      statsStarted?.();
      await statsRunning;
      return broker.topicStats(...args);
    },
  });
  const server = new TcpBrokerServer(slow);
  const { port } = await server.start();
  const channel = new TcpRpcChannel({ host: '127.0.0.1', port });
  t.teardown(() => channel.close());
  const client = new NetworkBrokerClient(channel);
  const popped = await client.receive(topic, group, {
    maxMessages: 1,
    waitMs: 0,
    tags: '*',
    invisibleMs: 60_000,
  });
  t.equal(popped.length, 1);
  const stats = client.topicStats(topic);
  await started;
  const closed = server.close();
  await t.rejects(client.groupStats(topic, group), { code: 'Unavailable' }, 'new calls shed');
  t.ok(await returnUnseen(client, topic, group, popped), 'the give-back is served');
  finishStats?.();
  await stats;
  await closed;
  const again = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
  t.equal(again.length, 1, 'visible again at once');
  t.equal(again[0].deliveryAttempt, 1, 'the delivery nobody saw does not count');
});
