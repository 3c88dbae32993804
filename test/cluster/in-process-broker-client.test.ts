// The all-in-one node's BrokerClient keeps a network client's deadlines: a broker call that gets
// no answer (a data disk whose flushes hang gives no error, only waits) answers 503 Unavailable
// with retry-after, and what a receive took after its deadline is given back unseen.
import t from 'tap';
import { inProcessBrokerClient, type BrokerClient } from '../../src/cluster/index.js';
import type { ReceivedMessage, TopicDescriptor, GroupDescriptor } from '../../src/model/index.js';

const topic = { topic: 'orders' } as TopicDescriptor;
const group = { group: 'g' } as GroupDescriptor;

t.test('a call the broker does not answer is Unavailable at its deadline', async (t) => {
  let release: (taken: ReceivedMessage[]) => void = () => undefined;
  let receiveSignal: AbortSignal | undefined;
  const returned: string[][] = [];
  const stalled = {
    publish: () => new Promise(() => undefined),
    receive: (_t: unknown, _g: unknown, _r: unknown, signal: AbortSignal) => {
      receiveSignal = signal;
      return new Promise<ReceivedMessage[]>((resolve) => (release = resolve));
    },
    returnMessages: (_t: unknown, _g: unknown, handles: string[]) => {
      returned.push(handles);
      return Promise.resolve();
    },
  } as unknown as BrokerClient;
  const client = inProcessBrokerClient(stalled, {
    callTimeoutMs: 20,
    longPollMarginMs: 20,
    retryAfterMs: 1000,
  });
  await t.rejects(client.publish(topic, []), {
    code: 'Unavailable',
    retryAfterMs: 1000,
    message: /publish got no answer in 20 ms/,
  });
  const caller = new AbortController();
  await t.rejects(
    client.receive(topic, group, { maxMessages: 1, waitMs: 10, tags: '*' }, caller.signal),
    { code: 'Unavailable' },
  );
  t.equal(receiveSignal?.aborted, true, 'the broker is told to stop waiting');
  t.equal(caller.signal.aborted, false, 'the caller’s own signal is left alone');
  // the broker's answer comes after all: nobody will see it, so it goes back at once
  release([{ receiptHandle: 'h1' } as ReceivedMessage]);
  await t.resolveMatch(
    new Promise((resolve) => setImmediate(() => resolve(returned))),
    [['h1']],
    'given back unseen',
  );
});

t.test('an answer within the deadline is the answer, errors included', async (t) => {
  const broker = {
    publish: () => Promise.resolve([{ messageId: 'm1' }]),
    ack: () => Promise.reject(Object.assign(new Error('no'), { code: 'TopicNotFound' })),
  } as unknown as BrokerClient;
  const client = inProcessBrokerClient(broker, { callTimeoutMs: 60_000 });
  t.same(await client.publish(topic, []), [{ messageId: 'm1' }]);
  await t.rejects(client.ack(topic, group, []), { code: 'TopicNotFound' });
});
