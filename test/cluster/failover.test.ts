// A broker SIGKILLed under publish load (3 brokers, 2 gateways, real processes): publishing goes
// on without errors on the other brokers (the gateway retries a NORMAL publish on another
// broker's queue), no acknowledged message is lost, and once the broker is back its stored
// messages are delivered — each once: what it stored of a call it never answered was fenced. A FIFO queue on the dead broker answers 503 naming it meanwhile.
import t from 'tap';
import { brokerMacKey } from '../../src/cli/broker-setup.js';
import { MessageIdCodec } from '../../src/protocol/index.js';
import { startTestCluster, tenantOf, type CallAnswer } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait-for.js';

// four processes started from the sources on a shared 2-core machine: minutes, not seconds
t.setTimeout(300_000);

t.test('SIGKILL a broker under publish load', async (t) => {
  const cluster = await startTestCluster(t, { brokers: 3, gateways: 2 });
  const client = await tenantOf(cluster);
  const ids = new MessageIdCodec(brokerMacKey(cluster.options.masterKey));
  t.equal(
    (await client.call(0, 'PUT', '/topics/load', { messageType: 'NORMAL', queueCount: 6 })).status,
    201,
  );
  t.equal(
    (await client.call(0, 'PUT', '/topics/ordered', { messageType: 'FIFO', queueCount: 3 })).status,
    201,
  );
  t.equal((await client.call(0, 'PUT', '/groups/readers', {})).status, 201);
  t.equal((await client.call(0, 'PUT', '/groups/peek', {})).status, 201);

  const acked = new Map<string, string>(); // body → messageId
  const errors: string[] = [];
  let killed = false;
  let ackedAfterKill = 0;
  let stop = false;
  const publisher = async (p: number) => {
    for (let i = 0; !stop; i++) {
      const body = `p${p}-${i}`;
      const res = await client.call(0, 'POST', '/topics/load/messages', { messages: [{ body }] });
      if (res.status === 200) {
        acked.set(body, res.body.messages[0].messageId);
        if (killed) ackedAfterKill++;
      } else {
        errors.push(`${res.status} ${JSON.stringify(res.body)}`);
      }
    }
  };
  const publishers = [0, 1, 2, 3].map(publisher);
  await waitFor('40 acknowledged publishes', () => acked.size >= 40, {
    timeoutMs: 60_000,
    intervalMs: 5,
  });
  // deliveries held, not acked, from the victim and another broker: acked after the kill
  const peeked: { handle: string; brokerId: number | null }[] = [];
  await waitFor(
    'deliveries from broker 2 and another',
    async () => {
      const res = await client.call(0, 'POST', '/topics/load/groups/peek/receive', {
        maxMessages: 32,
        waitSeconds: 1,
      });
      for (const m of res.body.messages ?? [])
        peeked.push({ handle: m.receiptHandle, brokerId: ids.brokerOf(m.messageId) });
      const from = new Set(peeked.map((p) => p.brokerId));
      return from.has(2) && from.size >= 2;
    },
    { timeoutMs: 60_000, intervalMs: 0 },
  );
  const victim = cluster.brokers.get(2);
  if (victim === undefined) throw new Error('no broker 2');
  await cluster.kill(victim);
  killed = true;
  await waitFor('80 acknowledged publishes after the kill', () => ackedAfterKill >= 80, {
    timeoutMs: 60_000,
    intervalMs: 5,
  });

  // FIFO: a sharding key whose queue lives on the dead broker waits for it (503 naming it)
  let refused: CallAnswer | undefined;
  for (let k = 0; k < 64 && refused === undefined; k++) {
    const res = await client.call(0, 'POST', '/topics/ordered/messages', {
      messages: [{ body: 'x', shardingKey: `key-${k}` }],
    });
    if (res.status === 503) refused = res;
  }
  stop = true;
  await Promise.all(publishers);
  t.same(errors, [], 'no publish failed while a broker died');
  t.ok(ackedAfterKill >= 80, 'publishing went on on the other brokers');
  t.ok(refused !== undefined, 'a FIFO queue of the dead broker answers 503');
  t.match(refused?.body.error.message ?? '', /broker 2 .*order over availability/);
  t.ok(Number(refused?.headers.get('retry-after')) >= 1, 'with retry-after');
  // an ack spanning the dead broker acks the rest and says which it could not
  // a few of each (an ack takes at most 100 handles)
  const spans = [
    ...peeked.filter((p) => p.brokerId === 2).slice(0, 8),
    ...peeked.filter((p) => p.brokerId !== 2).slice(0, 8),
  ];
  const spanning = await client.call(0, 'POST', '/topics/load/groups/peek/ack', {
    receiptHandles: spans.map((p) => p.handle),
  });
  t.equal(
    spanning.status,
    200,
    `an ack spanning a dead broker answers per handle: ${JSON.stringify(spanning.body)}`,
  );
  t.same(
    (spanning.body.results as { ok: boolean; code?: string }[])
      .map((r, i) => [spans[i].brokerId === 2, r.ok, r.code ?? null])
      .filter(
        ([onDead, ok, code], i, all) =>
          all.findIndex((x) => x[0] === onDead && x[1] === ok && x[2] === code) === i,
      )
      .sort(),
    [
      [false, true, null],
      [true, false, 'Unavailable'],
    ],
    'the dead broker’s handles Unavailable, the others acked',
  );
  const onVictim = [...acked.values()].filter((id) => ids.brokerOf(id) === 2).length;
  t.ok(onVictim > 0, `the victim had acknowledged messages (${onVictim})`);

  // publishes carrying a dedupId while the broker is dead: those its queues would take go
  // elsewhere; repeated once it is back (a retry after a lost answer), each is still a duplicate
  const keyed = Array.from({ length: 24 }, (_, k) => ({ body: `keyed-${k}`, dedupId: `dd-${k}` }));
  const first = await client.call(0, 'POST', '/topics/load/messages', { messages: keyed });
  t.equal(first.status, 200, 'publishes with dedupIds fail over too');
  const firstIds = (first.body.messages as { messageId: string }[]).map((m) => m.messageId);
  for (const [k, m] of keyed.entries()) acked.set(m.body, firstIds[k]);

  await cluster.startBroker(2);
  await waitFor(
    'the gateway to route to the restarted broker',
    async () => {
      const ready = (await (await fetch(`${cluster.gateways[1].url}/readyz`)).json()) as {
        brokers?: { id: number; state: string }[];
      };
      return ready.brokers?.some((b) => b.id === 2 && b.state === 'ready') === true;
    },
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  // through the other gateway: it learns of the moves from Redis
  const repeat = await client.call(1, 'POST', '/topics/load/messages', { messages: keyed });
  t.equal(repeat.status, 200);
  t.same(
    (repeat.body.messages as { messageId: string; duplicate?: boolean }[]).map((m) => [
      m.messageId,
      m.duplicate ?? false,
    ]),
    firstIds.map((id) => [id, true]),
    'every repeat is a duplicate of its first, the broker back or not',
  );
  const received = new Set<string>();
  // a body under two message ids was stored twice (a redelivery keeps its id)
  const idsOf = new Map<string, Set<string>>();
  let fromVictim = 0;
  await waitFor(
    'every acknowledged message delivered',
    async () => {
      const res = await client.call(0, 'POST', '/topics/load/groups/readers/receive', {
        maxMessages: 32,
        waitSeconds: 2,
      });
      if (res.status !== 200) return false; // the restarted broker may still be joining
      const handles: string[] = [];
      for (const m of res.body.messages) {
        received.add(m.body);
        idsOf.set(m.body, (idsOf.get(m.body) ?? new Set()).add(m.messageId));
        if (ids.brokerOf(m.messageId) === 2) fromVictim++;
        handles.push(m.receiptHandle);
      }
      if (handles.length > 0) {
        await client.call(0, 'POST', '/topics/load/groups/readers/ack', {
          receiptHandles: handles,
        });
      }
      return [...acked.keys()].every((body) => received.has(body));
    },
    { timeoutMs: 120_000, intervalMs: 0 },
  );
  t.equal(
    [...acked.keys()].filter((body) => !received.has(body)).length,
    0,
    `no acknowledged message lost (${acked.size} acknowledged)`,
  );
  t.ok(fromVictim >= onVictim, 'the killed broker’s messages were delivered after its restart');
  // what the victim stored of a call it never answered was fenced, and withdrawn at its restart
  const storedTwice = [...idsOf].filter(([, ids]) => ids.size > 1).map(([body]) => body);
  t.same(storedTwice, [], 'no message stored twice by the failover');
});
