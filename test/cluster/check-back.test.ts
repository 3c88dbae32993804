// Check-back across brokers (real processes: 3 brokers, 1 gateway): a TRANSACTION topic's
// undecided half messages live on every broker, and a check asks each broker for its share of
// maxMessages only — every offer a broker makes reaches the producer, so no half message is
// counted as offered without being seen (which would roll it back early).
import t from 'tap';
import { brokerMacKey } from '../../src/cli/broker-setup.js';
import { MessageIdCodec } from '../../src/protocol/index.js';
import { startTestCluster, tenantOf } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait-for.js';

// four processes started from the sources on a shared 2-core machine: minutes, not seconds
t.setTimeout(300_000);

interface Checked {
  transactionId: string;
  body: string;
  checkCount: number;
}

t.test('every offer of a check across brokers reaches the producer', async (t) => {
  const cluster = await startTestCluster(t, {
    brokers: 3,
    gateways: 1,
    env: { WHARF_TRANSACTION_CHECK_DELAY_MS: '100' },
  });
  const client = await tenantOf(cluster);
  t.equal(
    (await client.call(0, 'PUT', '/topics/pay', { messageType: 'TRANSACTION', queueCount: 6 }))
      .status,
    201,
  );
  // one call a batch goes to one queue (round robin): six calls spread over the brokers
  const bodies = Array.from({ length: 30 }, (_, i) => `half-${i}`);
  const ids = new MessageIdCodec(brokerMacKey(cluster.options.masterKey));
  const holders = new Set<number | null>();
  for (let call = 0; call < 6; call++) {
    const published = await client.call(0, 'POST', '/topics/pay/messages', {
      messages: bodies.slice(call * 5, call * 5 + 5).map((body) => ({ body })),
    });
    t.equal(published.status, 200);
    for (const m of published.body.messages) holders.add(ids.brokerOf(m.messageId));
  }
  t.ok(holders.size >= 2, `the half messages are on several brokers (${[...holders].join(', ')})`);

  // each check takes at most 4; a half message offered for the first time says checkCount 1
  const firstSeen = new Map<string, number>();
  let largest = 0;
  await waitFor(
    'every half message offered',
    async () => {
      // no wait: every broker with due halves answers at once, the case where a gateway that
      // took the first answer and cancelled the rest lost offers already counted
      const res = await client.call(0, 'POST', '/topics/pay/transactions/check', {
        maxMessages: 4,
        waitSeconds: 0,
      });
      if (res.status !== 200) return false;
      const offered = res.body.messages as Checked[];
      largest = Math.max(largest, offered.length);
      for (const m of offered) if (!firstSeen.has(m.body)) firstSeen.set(m.body, m.checkCount);
      return firstSeen.size === bodies.length;
    },
    { timeoutMs: 60_000, intervalMs: 20 },
  );
  t.ok(largest <= 4, `never more than maxMessages in one answer (${largest})`);
  const phantom = [...firstSeen].filter(([, count]) => count !== 1);
  t.same(phantom, [], 'no half message was counted as offered before the producer saw it');
});
