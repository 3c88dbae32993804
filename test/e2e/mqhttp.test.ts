import t from 'tap';
import { createHash } from 'node:crypto';
import { MessageProperties, mqClient, mqErrorOf, putResource } from '../helpers/mq-http-sdk.js';
import { adminFetch, json, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex').toUpperCase();

t.test('the SDK publishes, long-polls with a tag filter and acks', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/billing', {});
  const client = mqClient(wharf, tenant);
  const producer = client.getProducer(tenant.instanceId, 'orders');
  const consumer = client.getConsumer(tenant.instanceId, 'orders', 'billing', 'TagA||TagB');

  // nothing yet: the protocol's "no message" error, after the wait
  const empty = await mqErrorOf(consumer.consumeMessage(3, 1));
  t.equal(empty.Code, 'MessageNotExist', 'an empty long poll is MessageNotExist');
  t.ok(empty.RequestId, 'with a request id');

  const props = new MessageProperties();
  props.putProperty('a', '1');
  props.messageKey('order-17');
  const published = await producer.publishMessage('hello 0012 <&>', 'TagA', props);
  t.equal(published.code, 201);
  t.match(published.body.MessageId, /^[0-9A-F]{32}$/);
  t.equal(published.body.MessageBodyMD5, md5('hello 0012 <&>'));
  t.ok(published.requestId, 'x-mq-request-id on success');
  const filtered = await producer.publishMessage('not for billing', 'TagC');
  t.equal(filtered.code, 201);

  const got = await consumer.consumeMessage(16, 5);
  t.equal(got.code, 200);
  t.equal(got.body.length, 1, 'the tag filter leaves TagC out');
  const [m] = got.body;
  t.match(m, {
    MessageId: published.body.MessageId,
    MessageBody: 'hello 0012 <&>',
    MessageBodyMD5: md5('hello 0012 <&>'),
    MessageTag: 'TagA',
    MessageKey: 'order-17',
    ConsumedTimes: '1',
    Properties: { a: '1' },
  });
  t.ok(Number(m.NextConsumeTime) > Number(m.PublishTime), 'times are epoch ms');

  const acked = await consumer.ackMessage([m.ReceiptHandle]);
  t.equal(acked.code, 204, 'every handle applied: 204');

  // ack again plus a forged handle: 404 listing both, nothing thrown
  const partial = await consumer.ackMessage([m.ReceiptHandle, 'not-a-handle']);
  t.equal(partial.code, 404);
  t.same(
    partial.body?.map((e) => [e.ReceiptHandle, e.ErrorCode]),
    [
      [m.ReceiptHandle, 'MessageNotExist'],
      ['not-a-handle', 'ReceiptHandleError'],
    ],
  );
});

t.test('unknown topic, group and instance are the protocol errors', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  const client = mqClient(wharf, tenant);
  t.equal(
    (await mqErrorOf(client.getProducer(tenant.instanceId, 'nope').publishMessage('x'))).Code,
    'TopicNotExist',
  );
  t.equal(
    (await mqErrorOf(client.getProducer('no-such-instance', 'orders').publishMessage('x'))).Code,
    'TopicNotExist',
  );
  t.equal(
    (await mqErrorOf(client.getConsumer(tenant.instanceId, 'orders', 'nobody').consumeMessage(1)))
      .Code,
    'GroupNotExist',
  );
  // the SDK leaves ns out for an empty instance id: the tenant's only instance is meant
  const noNs = await client.getProducer('', 'orders').publishMessage('x');
  t.equal(noNs.code, 201);
});

t.test('ordered consume hands out a queue in order, the next only after an ack', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/fifo', { messageType: 'FIFO', queueCount: 2 });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const client = mqClient(wharf, tenant);
  const producer = client.getProducer(tenant.instanceId, 'fifo');
  for (let i = 0; i < 3; i++) {
    const props = new MessageProperties();
    props.shardingKey('order-1');
    t.equal((await producer.publishMessage(`step ${i}`, undefined, props)).code, 201);
  }
  const consumer = client.getConsumer(tenant.instanceId, 'fifo', 'g');
  const first = await consumer.consumeMessageOrderly(2, 5);
  t.same(
    first.body.map((m) => [m.MessageBody, m.ShardingKey]),
    [
      ['step 0', 'order-1'],
      ['step 1', 'order-1'],
    ],
    'in order',
  );
  // unacked: the queue hands out nothing more, for a plain consume either
  t.equal((await mqErrorOf(consumer.consumeMessageOrderly(16))).Code, 'MessageNotExist');
  t.equal((await mqErrorOf(consumer.consumeMessage(16))).Code, 'MessageNotExist');
  t.equal((await consumer.ackMessage(first.body.map((m) => m.ReceiptHandle))).code, 204);
  const next = await consumer.consumeMessageOrderly(16, 5);
  t.same(
    next.body.map((m) => m.MessageBody),
    ['step 2'],
    'the next once the earlier are acked',
  );
});

t.test('a timed message is delivered at its StartDeliverTime, not before', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/timed', { messageType: 'DELAY' });
  await putResource(t, wharf, tenant, '/topics/fifo', { messageType: 'FIFO' });
  await putResource(t, wharf, tenant, '/groups/g', {});
  const client = mqClient(wharf, tenant);
  const deliverAt = Date.now() + 1500;
  const props = new MessageProperties();
  props.startDeliverTime(deliverAt);
  const published = await client
    .getProducer(tenant.instanceId, 'timed')
    .publishMessage('later', 'T', props);
  t.equal(published.code, 201);
  const consumer = client.getConsumer(tenant.instanceId, 'timed', 'g');
  const got = await consumer.consumeMessage(1, 20);
  t.ok(Date.now() >= deliverAt, 'not before its time');
  t.equal(got.body[0].MessageId, published.body.MessageId, 'with the id published');
  t.equal(got.body[0].MessageBody, 'later');
  t.equal(got.body[0].StartDeliverTime, deliverAt, 'the SDK reads its deliver time back');

  // timed delivery is refused on FIFO topics, as on /v1
  const fifo = await mqErrorOf(
    client.getProducer(tenant.instanceId, 'fifo').publishMessage('x', undefined, props),
  );
  t.equal(fifo.Code, 'InvalidArgument');
});

t.test('the transactional producer: half messages, commit, rollback, check-back', async (t) => {
  const wharf = await startWharf(t, {
    transactions: { checkDelayMs: 300, maxCheckIntervalMs: 600, sweepIntervalMs: 50 },
  });
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/tx', { messageType: 'TRANSACTION' });
  await putResource(t, wharf, tenant, '/groups/producers', {});
  await putResource(t, wharf, tenant, '/groups/readers', {});
  const client = mqClient(wharf, tenant);
  const producer = client.getTransProducer(tenant.instanceId, 'tx', 'producers');
  const consumer = client.getConsumer(tenant.instanceId, 'tx', 'readers');

  const props = new MessageProperties();
  props.transCheckImmunityTime(10);
  const committed = await producer.publishMessage('commit me', 'T', props);
  t.equal(committed.code, 201);
  t.ok(committed.body.ReceiptHandle, 'a half message has a handle');
  const rolledBack = await producer.publishMessage('roll me back', 'T');
  const checked = await producer.publishMessage('decide after a check', 'T');

  t.equal(
    (await mqErrorOf(consumer.consumeMessage(16))).Code,
    'MessageNotExist',
    'half messages are invisible',
  );
  t.equal((await producer.commit(committed.body.ReceiptHandle!)).code, 204);
  t.equal((await producer.rollback(rolledBack.body.ReceiptHandle!)).code, 204);
  const contrary = await producer.commit(rolledBack.body.ReceiptHandle!);
  t.equal(contrary.code, 404, 'a decided transaction takes no contrary decision');
  t.equal(contrary.body?.[0].ErrorCode, 'MessageNotExist');
  // MQHTTP: once decided, its handles get MessageNotExist — the same decision repeated too
  for (const repeat of [
    await producer.commit(committed.body.ReceiptHandle!),
    await producer.rollback(rolledBack.body.ReceiptHandle!),
  ]) {
    t.equal(repeat.code, 404, 'a repeated decision: the half message no longer exists');
    t.equal(repeat.body?.[0].ErrorCode, 'MessageNotExist');
  }
  const forged = await producer.commit('forged-handle');
  t.equal(forged.body?.[0].ErrorCode, 'ReceiptHandleError');

  // the undecided one is offered for check-back once overdue
  const half = await producer.consumeHalfMessage(16, 10);
  t.equal(half.code, 200);
  const offered = half.body.find((m) => m.MessageId === checked.body.MessageId);
  t.ok(offered, 'the undecided half message is offered');
  t.equal(offered?.ConsumedTimes, '1');
  t.equal(offered?.MessageBody, 'decide after a check');
  // offered again after the broker's back-off: min(300 ms × 2, 600 ms) after this offer
  const again = Number(offered?.NextConsumeTime) - Number(offered?.FirstConsumeTime);
  t.ok(again > 0 && again <= 600, `NextConsumeTime is the next check (${again} ms on)`);
  t.equal((await producer.commit(offered!.ReceiptHandle)).code, 204);

  const seen = new Set<string>();
  while (seen.size < 2) {
    const got = await consumer.consumeMessage(16, 5);
    for (const m of got.body) {
      seen.add(m.MessageBody);
      await consumer.ackMessage([m.ReceiptHandle]);
    }
  }
  t.same([...seen].sort(), ['commit me', 'decide after a check']);

  // not a TRANSACTION topic: no half messages, handles are errors
  await putResource(t, wharf, tenant, '/topics/plain', { messageType: 'NORMAL' });
  const plain = client.getTransProducer(tenant.instanceId, 'plain', 'producers');
  t.equal((await mqErrorOf(plain.consumeHalfMessage(1))).Code, 'MessageNotExist');
  t.equal(
    (await plain.commit(committed.body.ReceiptHandle!)).body?.[0].ErrorCode,
    'ReceiptHandleError',
  );
});

t.test('one message world: SDK and /v1 see the same messages', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  await putResource(t, wharf, tenant, '/topics/orders', { messageType: 'NORMAL' });
  await putResource(t, wharf, tenant, '/groups/v1', {});
  await putResource(t, wharf, tenant, '/groups/sdk', {});
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const v1 = `/v1/instances/${tenant.instanceId}/topics/orders`;
  const client = mqClient(wharf, tenant);

  // SDK → /v1
  const props = new MessageProperties();
  props.putProperty('region', 'eu');
  props.messageKey('k1');
  props.shardingKey('shard-9');
  const fromSdk = await client
    .getProducer(tenant.instanceId, 'orders')
    .publishMessage('from the sdk', 'TagA', props);
  const recv = await json(
    await signedFetch(wharf.url, {
      method: 'POST',
      path: `${v1}/groups/v1/receive`,
      body: { waitSeconds: 5 },
      ...who,
    }),
  );
  t.match(recv.messages[0], {
    messageId: fromSdk.body.MessageId,
    body: 'from the sdk',
    tag: 'TagA',
    keys: ['k1'],
    properties: { region: 'eu' },
    shardingKey: 'shard-9',
  });

  // /v1 → SDK, and a handle from the SDK acks through /v1
  const pub = await json(
    await signedFetch(wharf.url, {
      method: 'POST',
      path: `${v1}/messages`,
      body: {
        messages: [
          {
            body: 'from v1',
            tag: 'TagB',
            keys: ['k2', 'k3'],
            properties: { region: 'us' },
            shardingKey: 's',
          },
        ],
      },
      ...who,
    }),
  );
  const consumer = client.getConsumer(tenant.instanceId, 'orders', 'sdk', 'TagB');
  const got = await consumer.consumeMessage(16, 5);
  t.match(got.body[0], {
    MessageId: pub.messages[0].messageId,
    MessageBody: 'from v1',
    MessageTag: 'TagB',
    MessageKey: 'k2 k3',
    ShardingKey: 's',
    Properties: { region: 'us' },
  });
  const ack = await json(
    await signedFetch(wharf.url, {
      method: 'POST',
      path: `${v1}/groups/sdk/ack`,
      body: { receiptHandles: [got.body[0].ReceiptHandle] },
      ...who,
    }),
  );
  t.same(ack.results, [{ receiptHandle: got.body[0].ReceiptHandle, ok: true }]);

  // the trace of an SDK publish is the /v1 trace
  const trace = await json(
    await signedFetch(wharf.url, {
      path: `${v1}/messages/${fromSdk.body.MessageId}/trace`,
      ...who,
    }),
  );
  t.match(trace.events, [{ type: 'PUBLISHED' }, { type: 'DELIVERED', group: 'v1' }]);

  // one set of metrics: both publishes and both receives count for the tenant
  const metrics = await (await adminFetch(wharf, 'GET', '/metrics')).text();
  const count = (name: string) =>
    Number(new RegExp(`^${name}\\{tenant="${tenant.tenantId}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
  t.equal(count('wharf_messages_published_total'), 2);
  t.equal(count('wharf_messages_received_total'), 2);
  t.match(
    metrics,
    /wharf_http_requests_total\{method="GET",route="\/topics\/:topic\/messages",status="200"\} 1/,
  );
});
