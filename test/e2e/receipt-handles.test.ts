// Receipt handles over the public API against a real broker (issue #8, defect 9): one spelling per
// handle, and a handle bound to its group's incarnation.
import t, { type Test } from 'tap';
import { provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';

interface Received {
  messageId: string;
  receiptHandle: string;
  deliveryAttempt: number;
}

async function setup(t: Test) {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const base = `/v1/instances/${tenant.instanceId}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await signedFetch(wharf.url, {
      method,
      path: `${base}${path}`,
      ...(body === undefined ? {} : { body }),
      ak: tenant.accessKeyId,
      sk: tenant.accessKeySecret,
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const receive = async (group: string): Promise<Received[]> => {
    const res = await call('POST', `/topics/orders/groups/${group}/receive`, { maxMessages: 32 });
    if (res.status !== 200) throw new Error(`receive ${res.status} ${JSON.stringify(res.body)}`);
    return (res.body as { messages: Received[] }).messages;
  };
  const ack = async (group: string, receiptHandles: string[]) => {
    const res = await call('POST', `/topics/orders/groups/${group}/ack`, { receiptHandles });
    t.equal(res.status, 200);
    return (res.body as { results: { ok: boolean; code?: string }[] }).results;
  };
  t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
  t.equal((await call('PUT', '/groups/g', {})).status, 201);
  return { call, receive, ack };
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

t.test('an alternate base64 spelling of a handle is refused; the canonical one acks', async (t) => {
  const { call, receive, ack } = await setup(t);
  t.equal(
    (await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }] })).status,
    200,
  );
  const [message] = await receive('g');
  const handle = message.receiptHandle;
  const last = BASE64URL.indexOf(handle[handle.length - 1]);
  const alternate = handle.slice(0, -1) + BASE64URL[last ^ 1];
  t.same(
    Buffer.from(alternate, 'base64url'),
    Buffer.from(handle, 'base64url'),
    'the alternate spelling stands for the same bytes',
  );
  t.match(await ack('g', [alternate]), [{ ok: false, code: 'InvalidReceiptHandle' }]);
  const visibility = await call('POST', '/topics/orders/groups/g/visibility', {
    receiptHandle: alternate,
    invisibleSeconds: 10,
  });
  t.equal(visibility.status, 400);
  t.match(visibility.body, { error: { code: 'InvalidReceiptHandle' } });
  t.match(await ack('g', [handle]), [{ ok: true }]);
});

t.test('a handle of a group deleted and re-created does not ack in the new group', async (t) => {
  const { call, receive, ack } = await setup(t);
  t.equal(
    (await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }] })).status,
    200,
  );
  const [old] = await receive('g');
  t.equal((await call('DELETE', '/groups/g')).status, 204);
  t.equal((await call('PUT', '/groups/g', {})).status, 201);
  t.equal(
    (await call('POST', '/topics/orders/groups/g/reset', { to: 'earliest' })).status,
    200,
    'the new group reads the topic from the start',
  );
  const [again] = await receive('g');
  t.equal(again.messageId, old.messageId, 'the new group has the same message in flight');
  t.equal(again.deliveryAttempt, old.deliveryAttempt, 'with the same attempt number');
  t.match(await ack('g', [old.receiptHandle]), [{ ok: false, code: 'InvalidReceiptHandle' }]);
  t.match(await ack('g', [again.receiptHandle]), [{ ok: true }]);
});

t.test(
  'a handle of a topic deleted and re-created does not ack the new topic’s message',
  async (t) => {
    const { call, receive, ack } = await setup(t);
    t.equal(
      (await call('POST', '/topics/orders/messages', { messages: [{ body: 'old' }] })).status,
      200,
    );
    const [old] = await receive('g');
    t.equal((await call('DELETE', '/topics/orders')).status, 204);
    t.equal((await call('PUT', '/topics/orders', { messageType: 'NORMAL' })).status, 201);
    t.equal(
      (await call('POST', '/topics/orders/messages', { messages: [{ body: 'new' }] })).status,
      200,
    );
    const [fresh] = await receive('g');
    t.not(fresh.messageId, old.messageId, 'the new topic’s own message, at the same queue offset');
    t.match(await ack('g', [old.receiptHandle]), [{ ok: false, code: 'InvalidReceiptHandle' }]);
    t.match(await ack('g', [fresh.receiptHandle]), [{ ok: true }], 'its own handle acks it');
  },
);

t.test('updating a group keeps its incarnation: handles stay valid', async (t) => {
  const { call, receive, ack } = await setup(t);
  t.equal(
    (await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }] })).status,
    200,
  );
  const [message] = await receive('g');
  t.equal((await call('PUT', '/groups/g', { maxDeliveryAttempts: 5 })).status, 200);
  t.match(await ack('g', [message.receiptHandle]), [{ ok: true }]);
});
