// A check-back storm — thousands of undecided half messages offered and rolled back at once —
// does not hold up ordinary publishes: they are answered while the storm is still going (the
// 100,000 figure is a bench row: npm run bench:transactions).
import t from 'tap';
import { clientOf } from '../helpers/txn-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWharf } from '../helpers/wharf.js';

const UNDECIDED = 3000;

t.test('ordinary publishes are answered during a check-back storm', async (t) => {
  const wharf = await startWharf(t, {
    transactions: { checkDelayMs: 0, maxChecks: 1, maxCheckIntervalMs: 400, sweepIntervalMs: 400 },
  });
  const c = await clientOf(wharf);
  await c.topic('orders');
  await c.topic('plain', 'NORMAL');
  // the storm's half messages, stored straight through the broker (the HTTP path is the same)
  const topic = (await wharf.meta.topic(c.tenant.tenantId, c.tenant.instanceId, 'orders'))!;
  const batch = Array.from({ length: 32 }, (_, i) => ({
    body: Buffer.from(`half ${i}`),
    bodyEncoding: 'utf8' as const,
  }));
  let stored = 0;
  while (stored < UNDECIDED) {
    await wharf.broker.publish(topic, batch);
    stored += batch.length;
  }
  t.equal(wharf.broker.undecidedTransactions(), stored);

  // producers drain offers as fast as they can; every offer is the last (maxChecks 1), so the
  // sweep rolls them back in batches once their window passes
  let storming = true;
  let offered = 0;
  const checkers = Array.from({ length: 4 }, async () => {
    while (storming) {
      const answer = await c.check('orders', 0, 32);
      offered += answer.length;
    }
  });
  let answeredDuringStorm = 0;
  for (let i = 0; i < 20; i++) {
    const [result] = await c.publish('plain', [{ body: `ordinary ${i}` }]);
    t.ok(result.messageId, `ordinary publish ${i} answered`);
    if (wharf.broker.undecidedTransactions() > 0) answeredDuringStorm++;
  }
  t.ok(answeredDuringStorm > 0, 'publishes were answered while the storm was still going');
  await waitFor('the storm to be rolled back', () => wharf.broker.undecidedTransactions() === 0, {
    timeoutMs: 30_000,
  });
  storming = false;
  await Promise.all(checkers);
  t.equal(offered, stored, 'each half offered once, then rolled back by the sweep');
  await c.group('billing');
  t.same(await c.receive('orders', 'billing'), [], 'nothing of the storm is delivered');
});
