// A receive aborted as the broker pops (a cluster gateway took another broker's answer) hides
// nothing: the server makes what it popped visible again at once, and so does a client that
// gets a late answer after its cancel.
import t from 'tap';
import type { BrokerClient } from '../../src/cluster/index.js';
import {
  NetworkBrokerClient,
  TcpBrokerServer,
  TcpRpcChannel,
  dispatchBrokerRpc,
  type RpcChannel,
} from '../../src/cluster/index.js';
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
  t.equal(again[0].deliveryAttempt, 2, 'the aborted delivery counts');
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
    return found.length === 1 && found[0].deliveryAttempt === 2;
  });
  t.pass('released through the broker');
});
