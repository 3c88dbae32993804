// A delayed publish with a dedupId is deduplicated like an immediate one, through signed HTTP: a
// repeat within the window — delayed or not, in the same batch, after delivery, after a restart
// — answers the first result with `duplicate: true`, stores nothing new, and the message is
// delivered once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startTestRedis } from '../helpers/redis.js';
import { clientFor, delayClient, type DelayClient } from '../helpers/delay-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { provisionTenant, startWharf, type TestWharf } from '../helpers/wharf.js';

interface Result {
  messageId: string;
  queueId: number;
  bodyMd5: string;
  duplicate?: boolean;
}

async function published(c: DelayClient, topic: string, messages: unknown[]): Promise<Result[]> {
  const res = await c.publish(topic, messages);
  if (res.status !== 200) throw new Error(`publish ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.messages as Result[];
}

/** Schedule records stored in the instance's schedule topic (queue 0) so far. */
function scheduleRecords(wharf: TestWharf, storePrefix: string): number {
  const name = `${storePrefix}%SCHEDULE%`;
  if (wharf.broker.store.queueIds(name).length === 0) return 0;
  return wharf.broker.store.queueOffsets(name, 0).maxQueueOffset;
}

/** Receives until every expected id came and `afterMs` (the latest due time any repeat asked
 *  for) has passed; returns all it got, so a second delivery shows as an extra id. */
async function receiveAll(c: DelayClient, expected: readonly string[], afterMs: number) {
  const got: string[] = [];
  await waitFor(
    `${expected.length} messages`,
    async () => {
      got.push(...(await c.receive('later', 'g')).map((m) => m.messageId));
      return Date.now() > afterMs && expected.every((id) => got.includes(id));
    },
    { timeoutMs: 20_000 },
  );
  // anything dispatched by then is in the queue: one more look
  got.push(...(await c.receive('later', 'g')).map((m) => m.messageId));
  return got.sort();
}

t.test('a repeated delayed dedupId answers the first result and is delivered once', async (t) => {
  const c = await delayClient(t);
  const { wharf } = c;
  await c.call('PUT', '/topics/later', { messageType: 'DELAY', queueCount: 4 });
  await c.call('PUT', '/groups/g', {});
  t.same(await c.receive('later', 'g'), []);
  const due = Date.now() + 1500;
  const [first] = await published(c, 'later', [{ body: 'once', dedupId: 'd1', deliverAt: due }]);
  t.notOk(first.duplicate, 'the first is stored');
  t.equal(scheduleRecords(wharf, c.storePrefix), 1);

  // again, delayed; in one batch twice; and without a delay: all the first result
  const [again] = await published(c, 'later', [{ body: 'once', dedupId: 'd1', deliverAt: due }]);
  t.same(again, { ...first, duplicate: true });
  const batch = await published(c, 'later', [
    { body: 'once', dedupId: 'd1', delaySeconds: 5 },
    { body: 'once', dedupId: 'd1', delaySeconds: 5 },
    { body: 'twin', dedupId: 'd2', delaySeconds: 1 },
    { body: 'twin', dedupId: 'd2', delaySeconds: 1 },
  ]);
  t.same(batch[0], { ...first, duplicate: true });
  t.same(batch[1], { ...first, duplicate: true });
  t.notOk(batch[2].duplicate, 'a new dedupId in a batch is stored');
  t.same(batch[3], { ...batch[2], duplicate: true }, 'its repeat in the same batch is not');
  const [immediate] = await published(c, 'later', [{ body: 'once', dedupId: 'd1' }]);
  t.same(immediate, { ...first, duplicate: true }, 'an undelayed repeat answers the delayed one');
  t.equal(scheduleRecords(wharf, c.storePrefix), 2, 'nothing new was scheduled');
  t.same(await c.receive('later', 'g'), [], 'and nothing was published at once');

  const view = await c.call('GET', `/topics/later/messages/${first.messageId}`);
  t.match(view.body, { scheduleState: 'SCHEDULED', deliverAt: due });

  const expected = [first.messageId, batch[2].messageId].sort();
  t.same(await receiveAll(c, expected, due + 5000), expected, 'each delivered once');
  // after delivery, still within the window
  const [late] = await published(c, 'later', [{ body: 'once', dedupId: 'd1', delaySeconds: 1 }]);
  t.same(late, { ...first, duplicate: true });
  t.same(await receiveAll(c, [], Date.now() + 1200), [], 'never delivered twice');
});

t.test('a delayed repeat of an immediate dedupId answers it and schedules nothing', async (t) => {
  const c = await delayClient(t);
  await c.call('PUT', '/topics/later', { messageType: 'NORMAL' });
  await c.call('PUT', '/groups/g', {});
  t.same(await c.receive('later', 'g'), []);
  const [first] = await published(c, 'later', [{ body: 'now', dedupId: 'i1' }]);
  const [again] = await published(c, 'later', [{ body: 'now', dedupId: 'i1', delaySeconds: 1 }]);
  t.same(again, { ...first, duplicate: true });
  t.equal(scheduleRecords(c.wharf, c.storePrefix), 0, 'no schedule record');
  t.same(
    await receiveAll(c, [first.messageId], Date.now() + 1200),
    [first.messageId],
    'delivered once',
  );
});

t.test('a delayed dedupId is remembered across a restart', async (t) => {
  const redis = await startTestRedis(t);
  const brokerDir = mkdtempSync(join(tmpdir(), 'wharf-delay-dedup-'));
  t.teardown(() => rmSync(brokerDir, { recursive: true, force: true }));
  const firstNode = await startWharf(t, { brokerDir, redisUrl: redis.url });
  const tenant = await provisionTenant(firstNode);
  const client = (wharf: TestWharf) => ({
    ...clientFor(
      wharf,
      tenant.instanceId,
      tenant.accessKeyId,
      tenant.accessKeySecret,
      tenant.tenantId,
    ),
  });
  const a = client(firstNode);
  await a.call('PUT', '/topics/later', { messageType: 'DELAY' });
  await a.call('PUT', '/groups/g', {});
  t.same(await a.receive('later', 'g'), []);
  const due = Date.now() + 2000;
  const [first] = await published(a, 'later', [{ body: 'x', dedupId: 'r1', deliverAt: due }]);
  await firstNode.close();

  // a new broker process knows nothing in memory: the key index answers
  const secondNode = await startWharf(t, { brokerDir, redisUrl: redis.url });
  const b = client(secondNode);
  const [again] = await published(b, 'later', [{ body: 'x', dedupId: 'r1', deliverAt: due }]);
  t.same(again, { ...first, duplicate: true });
  t.equal(scheduleRecords(secondNode, b.storePrefix), 1, 'still one schedule record');
  t.same(await receiveAll(b, [first.messageId], due), [first.messageId], 'delivered once');
});
