// The broker registry and queue placement against a real Redis: a live id is refused to a second
// claimant, a released or expired lease shows the broker down in a gateway's directory (within
// the TTL plus a refresh), a lease that expired while Redis was away is taken again, and queues
// are spread by load, kept when placed, and placed on growth.
import t from 'tap';
import { MetaStore, type BrokerEntry } from '../../src/meta/index.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

const topic = (name: string, queueCount: number) => ({
  tenantId: 'ten-1',
  instanceId: 'inst-1',
  topic: name,
  queueCount,
});

t.test('leases, the directory and placement', async (t) => {
  const redis = await startTestRedis(t);
  const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
  t.teardown(() => meta.close());
  const directory = await meta.openBrokerDirectory({ refreshMs: 100 });
  t.teardown(() => directory.close());
  const live = () => [...directory.brokers.values()].filter((b) => b.live).map((b) => b.brokerId);

  const one = await meta.claimBrokerId({ brokerId: 1, address: 'b1:7070', ttlMs: 3000 });
  const two = await meta.claimBrokerId({ brokerId: 2, address: 'b2:7070', ttlMs: 3000 });
  await t.rejects(
    meta.claimBrokerId({ brokerId: 1, address: 'other:7070' }),
    { code: 'Conflict', message: /broker id 1 is held by a live broker at b1:7070/ },
    'a second claim of a live id is refused, naming the holder',
  );
  await waitFor('the directory to see both', () => live().join() === '1,2');
  const changes: ReadonlyMap<number, BrokerEntry>[] = [];
  directory.onChange((table) => changes.push(table));

  await two.release();
  await waitFor('broker 2 down after its release', () => live().join() === '1');
  t.equal(directory.brokers.get(2)?.address, 'b2:7070', 'a released broker stays known');
  t.ok(changes.length > 0, 'listeners hear the change');

  // a lease nobody renews expires: the broker is down within its TTL plus a refresh
  const three = await meta.claimBrokerId({
    brokerId: 3,
    address: 'b3:7070',
    ttlMs: 500,
    renewMs: 60_000,
  });
  await waitFor('broker 3 live', () => live().includes(3));
  await waitFor('broker 3 down once its lease expired', () => !live().includes(3), {
    timeoutMs: 10_000,
  });
  // its renewal finds the lease gone and takes it again (Redis was away longer than the TTL)
  await (three as unknown as { renew(): Promise<void> }).renew();
  await waitFor('broker 3 live again', () => live().includes(3));
  await three.release();

  // placement: spread by load over the live brokers, kept, grown
  const again = await meta.claimBrokerId({ brokerId: 2, address: 'b2:7071' });
  t.teardown(() => again.release());
  t.teardown(() => one.release());
  const first = await meta.placements.place(topic('a', 4), [1, 2]);
  t.same([...first].sort(), [1, 1, 2, 2], 'spread evenly');
  t.same(await meta.placements.place(topic('a', 4), [1]), first, 'a placed queue stays');
  const grown = await meta.placements.place(topic('a', 6), [1]);
  t.same(grown.slice(0, 4), first, 'growth keeps the old queues');
  t.same(grown.slice(4), [1, 1], 'and places the new ones on the live brokers');
  const next = await meta.placements.place(topic('b', 3), [1, 2]);
  t.same(next, [2, 2, 2], 'the less loaded broker takes the next topic');
  await meta.placements.drop(topic('a', 6));
  t.same(await meta.redis.hgetall(meta.keys.brokerLoad()), { '1': '0', '2': '3' });
  await t.rejects(meta.placements.place(topic('c', 1), []), { code: 'Unavailable' });
});

t.test(
  'a claim waiting for a lapse takes the id of a holder that stopped; a live one refuses it',
  async (t) => {
    // a broker restarted right after a SIGKILL found its own old lease and exited; it now waits
    // for the lease to lapse (ttl + one renewal), and a holder that still renews keeps the id
    const redis = await startTestRedis(t);
    const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
    t.teardown(() => meta.close());
    const lapse = { ttlMs: 400, renewMs: 100 };
    // the crashed one: its lease is never renewed again
    await meta.claimBrokerId({ brokerId: 5, address: 'old:7070', ttlMs: 400, renewMs: 600_000 });
    const restarted = await meta.claimBrokerId({
      brokerId: 5,
      address: 'new:7070',
      ...lapse,
      waitForLapse: true,
    });
    t.teardown(() => restarted.release());
    t.equal(restarted.record.address, 'new:7070', 'the restarted broker holds its id');
    const live = await meta.claimBrokerId({ brokerId: 6, address: 'live:7070', ...lapse });
    t.teardown(() => live.release());
    await t.rejects(
      meta.claimBrokerId({ brokerId: 6, address: 'other:7070', ...lapse, waitForLapse: true }),
      { code: 'Conflict', message: /broker id 6 is held by a live broker at live:7070/ },
      'a live holder keeps its id',
    );
  },
);

t.test(
  'a claim from the same data dir takes the id back from a crashed run, not from a live copy',
  async (t) => {
    const redis = await startTestRedis(t);
    const meta = await MetaStore.open({ redisUrl: redis.url, masterKey: 'm'.repeat(32) });
    t.teardown(() => meta.close());
    // the crashed run: a lease of 60 s, never renewed again; a lapse would take a minute, the
    // take-back needs the holder silent for two renewals (0.2 s)
    await meta.claimBrokerId({
      brokerId: 7,
      address: 'a',
      ttlMs: 60_000,
      renewMs: 600_000,
      owner: 'dir.run1',
    });
    const restarted = await meta.claimBrokerId({
      brokerId: 7,
      address: 'a',
      ttlMs: 60_000,
      renewMs: 100,
      owner: 'dir.run2',
      takeBackFrom: 'dir.',
      waitForLapse: true,
    });
    t.teardown(() => restarted.release());
    t.equal(restarted.record.owner, 'dir.run2', 'taken back from the crashed run');

    // a live run of the same data dir (a copy of it) renews: refused
    const timing = { ttlMs: 1000, renewMs: 100 };
    const live = await meta.claimBrokerId({
      brokerId: 8,
      address: 'a',
      ...timing,
      owner: 'dir.r1',
    });
    t.teardown(() => live.release());
    await t.rejects(
      meta.claimBrokerId({
        brokerId: 8,
        address: 'b',
        ...timing,
        owner: 'dir.r2',
        takeBackFrom: 'dir.',
        waitForLapse: true,
      }),
      { code: 'Conflict' },
      'a live holder of the same data dir keeps its id',
    );
  },
);
