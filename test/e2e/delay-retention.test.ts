// Retention never deletes a message the broker still needs: the broker gives the store a floor
// (the lowest schedule record not yet dispatched or cancelled, the lowest half message not yet
// decided and copied), and retention keeps the segment holding it and every later one, however
// old, while older segments still go.
import t from 'tap';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MessageStore } from '../../src/store/index.js';
import { delayClient } from '../helpers/delay-client.js';
import { waitFor } from '../helpers/wait-for.js';

interface Hooks {
  runRetention(nowMs?: number): Promise<number>;
}
const hooks = (s: MessageStore) => s as unknown as Hooks;

t.test('retention keeps the segments of a pending delayed message', async (t) => {
  const c = await delayClient(t, {
    store: { segmentBytes: 64 * 1024, retentionMs: 60_000, retentionCheckIntervalMs: 3_600_000 },
  });
  await c.call('PUT', '/topics/later', { messageType: 'DELAY' });
  await c.call('PUT', '/topics/plain', { messageType: 'NORMAL' });
  await c.call('PUT', '/groups/g', {});
  t.same(await c.receive('later', 'g'), []);
  const filler = (n: number) =>
    Array.from({ length: 16 }, (_, i) => ({ body: `${n}-${i}-${'x'.repeat(1000)}` }));
  for (let n = 0; n < 12; n++) t.equal((await c.publish('plain', filler(n))).status, 200);
  const due = Date.now() + 4000;
  const res = await c.publish('later', [{ body: 'kept', deliverAt: due }]);
  t.equal(res.status, 200);
  const [delayed] = res.body.messages as { messageId: string }[];
  for (let n = 12; n < 24; n++) t.equal((await c.publish('plain', filler(n))).status, 200);

  const store = c.wharf.broker.store;
  const before = store.stats().logMinOffset;
  // an hour later, as far as retention can tell: every closed segment has expired
  const deleted = await hooks(store).runRetention(Date.now() + 3_600_000);
  t.ok(deleted > 0, 'segments wholly below the pending message are deleted');
  t.ok(store.stats().logMinOffset > before);
  const view = await c.call('GET', `/topics/later/messages/${delayed.messageId}`);
  t.equal(view.status, 200, 'the pending message is still there');
  t.equal(view.body.scheduleState, 'SCHEDULED');
  t.equal(await hooks(store).runRetention(Date.now() + 3_600_000), 0, 'and stays');

  const got = await waitFor('the delayed message', async () => {
    const messages = await c.receive('later', 'g');
    return messages.length > 0 ? messages : null;
  });
  t.same(
    got.map((m) => m.messageId),
    [delayed.messageId],
    'delivered at its time',
  );
  // dispatched and marked: nothing holds the old segments any more
  await waitFor(
    'retention to pass the delivered message',
    async () => (await hooks(store).runRetention(Date.now() + 3_600_000)) > 0,
  );
});

t.test('retention keeps the segments of an undecided half message', async (t) => {
  const c = await delayClient(t, {
    store: { segmentBytes: 64 * 1024, retentionMs: 60_000, retentionCheckIntervalMs: 3_600_000 },
    // no check-back offer or age rollback during the test: the half stays undecided
    transactions: { checkDelayMs: 3_600_000 },
  });
  await c.call('PUT', '/topics/pay', { messageType: 'TRANSACTION' });
  await c.call('PUT', '/topics/plain', { messageType: 'NORMAL' });
  await c.call('PUT', '/groups/g', {});
  const filler = (n: number) =>
    Array.from({ length: 16 }, (_, i) => ({ body: `${n}-${i}-${'x'.repeat(1000)}` }));
  for (let n = 0; n < 12; n++) t.equal((await c.publish('plain', filler(n))).status, 200);
  const res = await c.publish('pay', [{ body: 'half' }]);
  t.equal(res.status, 200);
  const [half] = res.body.messages as { messageId: string; transactionId: string }[];
  for (let n = 12; n < 24; n++) t.equal((await c.publish('plain', filler(n))).status, 200);

  const store = c.wharf.broker.store;
  const before = store.stats().logMinOffset;
  const deleted = await hooks(store).runRetention(Date.now() + 3_600_000);
  t.ok(deleted > 0, 'segments wholly below the undecided half are deleted');
  t.ok(store.stats().logMinOffset > before);
  t.equal(await hooks(store).runRetention(Date.now() + 3_600_000), 0, 'and the rest stays');

  const commit = await c.call('POST', `/topics/pay/transactions/${half.transactionId}/commit`);
  t.equal(commit.status, 204, 'the commit finds its half message');
  const got = await waitFor('the committed message', async () => {
    const messages = await c.receive('pay', 'g', true);
    return messages.length > 0 ? messages : null;
  });
  t.same(
    got.map((m) => m.body),
    ['half'],
    'delivered once committed',
  );
  await waitFor(
    'retention to pass the decided half',
    async () => (await hooks(store).runRetention(Date.now() + 3_600_000)) > 0,
  );
});

t.test('a damaged schedule record holds retention back, not lets it take later ones', async (t) => {
  const c = await delayClient(t, {
    store: {
      segmentBytes: 64 * 1024,
      retentionMs: 60_000,
      retentionCheckIntervalMs: 3_600_000,
      // reads come from the files, where the damage is
      readCacheBytes: 0,
      readAheadCacheBytes: 0,
    },
  });
  await c.call('PUT', '/topics/later', { messageType: 'DELAY' });
  await c.call('PUT', '/topics/plain', { messageType: 'NORMAL' });
  const filler = (n: number) =>
    Array.from({ length: 16 }, (_, i) => ({ body: `${n}-${i}-${'x'.repeat(1000)}` }));
  for (let n = 0; n < 12; n++) t.equal((await c.publish('plain', filler(n))).status, 200);
  const due = Date.now() + 3_600_000;
  const damaged = await c.publish('later', [
    { body: 'damaged', deliverAt: due, keys: ['damage-me'] },
  ]);
  t.equal(damaged.status, 200);
  const kept = await c.publish('later', [{ body: 'kept', deliverAt: due }]);
  t.equal(kept.status, 200);
  const [keptId] = (kept.body.messages as { messageId: string }[]).map((m) => m.messageId);
  for (let n = 12; n < 24; n++) t.equal((await c.publish('plain', filler(n))).status, 200);
  // a byte of the first delayed message's record flipped on disk, next to its key
  const log = join(c.wharf.dir, 'broker-0', 'commitlog');
  const flipped = readdirSync(log).some((name) => {
    const bytes = readFileSync(join(log, name));
    const at = bytes.indexOf('damage-me');
    if (at < 0) return false;
    bytes[at] ^= 0x01;
    writeFileSync(join(log, name), bytes);
    return true;
  });
  t.ok(flipped, 'the record was found and damaged');

  const store = c.wharf.broker.store;
  await hooks(store).runRetention(Date.now() + 3_600_000);
  const view = await c.call('GET', `/topics/later/messages/${keptId}`);
  t.equal(view.status, 200, 'the later pending message is still there');
  t.equal(view.body.scheduleState, 'SCHEDULED');
});
