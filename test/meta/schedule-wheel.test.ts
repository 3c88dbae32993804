import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { ScheduleWheel } from '../../src/broker/schedule-wheel.js';
import { MetaKeys } from '../../src/meta/keys.js';
import { startRedisServer } from '../../src/meta/redis-server.js';
import {
  MAX_CLAIM,
  RELEASE_CLAIMS_A_CALL,
  RedisScheduleWheel,
  type WheelEntry,
} from '../../src/meta/schedule-wheel.js';
import { startTestRedis } from '../helpers/redis.js';

const T0 = 1_800_000_000_000;
const LEASE_MS = 30_000;
let brokers = 0;

function connect(t: Test, url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  return redis;
}

/** A ready, empty wheel of a broker of its own, on the file's Redis. */
async function readyWheel(
  t: Test,
  url: string,
  wheelId = 'w1',
): Promise<{ wheel: RedisScheduleWheel; brokerId: string; redis: Redis }> {
  const redis = connect(t, url);
  const brokerId = `b${++brokers}`;
  const wheel = new RedisScheduleWheel(redis, new MetaKeys('test'), brokerId);
  await wheel.beginRebuild(wheelId);
  t.equal(await wheel.finishRebuild(wheelId, -1, 0), 'ok');
  return { wheel, brokerId, redis };
}

async function claimAll(
  wheel: RedisScheduleWheel,
  nowMs: number,
  max: number,
): Promise<WheelEntry[][]> {
  const batches: WheelEntry[][] = [];
  for (;;) {
    const answer = await wheel.claimDue('w1', nowMs, nowMs, max, LEASE_MS);
    if (answer.status !== 'ok') throw new Error(`claim answered ${answer.status}`);
    if (answer.claim === null) return batches;
    batches.push(answer.claim.entries);
    await wheel.complete(answer.claim.claimId);
  }
}

t.test('schedule wheel', async (t) => {
  const server = await startTestRedis(t);

  t.test('the Redis wheel implements the broker interface', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    const asInterface: ScheduleWheel = wheel;
    t.ok(asInterface);
  });

  t.test('claims only due entries, earliest first, each at its exact ms', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    const entries: WheelEntry[] = [
      { logOffset: 300, deliverAtMs: T0 + 7 },
      { logOffset: 100, deliverAtMs: T0 + 2 },
      { logOffset: 200, deliverAtMs: T0 + 1 },
      { logOffset: 400, deliverAtMs: T0 + 1_000 },
      { logOffset: 2 ** 52, deliverAtMs: T0 + 3 },
    ];
    t.equal(await wheel.schedule('w1', entries, -1), 'ok');
    const first = await wheel.claimDue('w1', T0, T0 + 7, 10, LEASE_MS);
    t.same(first, {
      status: 'ok',
      claim: {
        claimId: first.status === 'ok' ? first.claim?.claimId : '',
        reclaimed: false,
        entries: [
          { logOffset: 200, deliverAtMs: T0 + 1 },
          { logOffset: 100, deliverAtMs: T0 + 2 },
          { logOffset: 2 ** 52, deliverAtMs: T0 + 3 },
          { logOffset: 300, deliverAtMs: T0 + 7 },
        ],
      },
    });
    t.same(
      await wheel.claimDue('w1', T0 + 10, T0 + 999, 10, LEASE_MS),
      { status: 'ok', claim: null, nextDueMs: T0 + 1_000 },
      'nothing due: the earliest pending entry says when something will be',
    );
    t.same(await wheel.size(), { pending: 1, claims: 1 });
    const mark = await wheel.mark();
    t.same(mark, { wheelId: 'w1', scheduledLogOffset: 2 ** 52, state: 'ready' });
  });

  t.test('a claim takes at most max entries; the next one goes on from there', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    const entries: WheelEntry[] = [];
    for (let i = 0; i < 25; i++) entries.push({ logOffset: i * 10, deliverAtMs: T0 + 25 - i });
    await wheel.schedule('w1', entries, -1);
    const batches = await claimAll(wheel, T0 + 100, 10);
    t.same(
      batches.map((batch) => batch.length),
      [10, 10, 5],
    );
    const due = batches.flat().map((entry) => entry.deliverAtMs);
    t.same(
      due,
      [...due].sort((a, b) => a - b),
    );
    t.same(await wheel.size(), { pending: 0, claims: 0 });
  });

  t.test('two concurrent claimers never get the same entry', async (t) => {
    const { wheel, brokerId } = await readyWheel(t, server.url);
    const other = new RedisScheduleWheel(connect(t, server.url), new MetaKeys('test'), brokerId);
    const entries: WheelEntry[] = [];
    for (let i = 0; i < 20_000; i++)
      entries.push({ logOffset: i * 1_100, deliverAtMs: T0 + (i % 997) });
    await wheel.schedule('w1', entries, -1);
    const [mine, theirs] = await Promise.all([
      claimAll(wheel, T0 + 1_000, 100),
      claimAll(other, T0 + 1_000, 100),
    ]);
    const seen = new Set<number>();
    let duplicates = 0;
    for (const entry of [...mine.flat(), ...theirs.flat()]) {
      if (seen.has(entry.logOffset)) duplicates++;
      seen.add(entry.logOffset);
    }
    t.equal(duplicates, 0);
    t.equal(seen.size, entries.length);
    t.ok(mine.length > 0 && theirs.length > 0, 'both claimers took batches');
  });

  t.test('a claim whose lease ran out is claimed again, whole, under a new id', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    await wheel.schedule(
      'w1',
      [
        { logOffset: 1, deliverAtMs: T0 },
        { logOffset: 2, deliverAtMs: T0 + 1 },
      ],
      -1,
    );
    const first = await wheel.claimDue('w1', T0 + 5, T0 + 5, 10, 1_000);
    if (first.status !== 'ok' || first.claim === null) throw new Error('nothing claimed');
    t.same(
      await wheel.claimDue('w1', T0 + 1_004, T0 + 1_004, 10, 1_000),
      { status: 'ok', claim: null, nextDueMs: T0 + 1_005 },
      'nothing pending: the lease deadline says when something will be due',
    );
    const again = await wheel.claimDue('w1', T0 + 1_005, T0 + 1_005, 10, 1_000);
    if (again.status !== 'ok' || again.claim === null) throw new Error('lease did not expire');
    t.equal(again.claim.reclaimed, true);
    t.not(again.claim.claimId, first.claim.claimId);
    t.same(again.claim.entries, first.claim.entries);
    t.equal(await wheel.complete(first.claim.claimId), false, 'the dead claimer completes late');
    t.equal(await wheel.complete(again.claim.claimId), true);
    t.same(await wheel.size(), { pending: 0, claims: 0 });
    t.same(
      await wheel.claimDue('w1', T0 + 99_999, T0 + 99_999, 10, 1_000),
      { status: 'ok', claim: null, nextDueMs: null },
      'an empty wheel: nothing will be due',
    );
  });

  t.test('a restarting broker releases its claims back to pending', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    await wheel.schedule(
      'w1',
      [
        { logOffset: 7, deliverAtMs: T0 + 5 },
        { logOffset: 8, deliverAtMs: T0 + 9 },
        { logOffset: 9, deliverAtMs: T0 + 3 },
      ],
      -1,
    );
    await wheel.claimDue('w1', T0, T0 + 6, 10, LEASE_MS);
    t.equal(await wheel.releaseClaims('w1'), 2);
    t.same(await wheel.size(), { pending: 3, claims: 0 });
    const batches = await claimAll(wheel, T0 + 10, 10);
    t.same(batches, [
      [
        { logOffset: 9, deliverAtMs: T0 + 3 },
        { logOffset: 7, deliverAtMs: T0 + 5 },
        { logOffset: 8, deliverAtMs: T0 + 9 },
      ],
    ]);
    t.equal(await wheel.releaseClaims('other'), 'lost');
  });

  t.test('claims are released a page at a time, every entry of every claim', async (t) => {
    const { wheel, brokerId, redis } = await readyWheel(t, server.url);
    const count = 7 * RELEASE_CLAIMS_A_CALL * 50 + 3;
    await wheel.schedule(
      'w1',
      Array.from({ length: count }, (_, i) => ({ logOffset: i, deliverAtMs: T0 + i })),
      -1,
    );
    // many small claims: more than one release call's page
    for (let claimed = 0; claimed < count; claimed += 50) {
      const answer = await wheel.claimDue('w1', T0 + count, T0 + count, 50, LEASE_MS);
      t.equal(answer.status, 'ok');
    }
    t.same(await wheel.size(), { pending: 0, claims: Math.ceil(count / 50) });
    // count the script calls by Redis' own statistics
    const calls = async () => {
      const info = await redis.info('commandstats');
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    const before = await calls();
    t.equal(await wheel.releaseClaims('w1'), count);
    t.ok((await calls()) - before > 1, 'over more than one script call');
    t.same(await wheel.size(), { pending: count, claims: 0 });
    const keys = new MetaKeys('test');
    t.equal(await redis.zcard(keys.wheelLeases(brokerId)), 0, 'no lease left');
    const batches = await claimAll(wheel, T0 + count, MAX_CLAIM);
    t.same(
      batches.flat().map((e) => e.logOffset),
      Array.from({ length: count }, (_, i) => i),
      'every entry back at its due time, earliest first',
    );
  });

  t.test('a cancelled entry is dropped by logOffset; unknown ones count 0', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    await wheel.schedule(
      'w1',
      [
        { logOffset: 1, deliverAtMs: T0 },
        { logOffset: 2, deliverAtMs: T0 },
        { logOffset: 3, deliverAtMs: T0 },
      ],
      -1,
    );
    t.equal(await wheel.cancel([2, 99]), 1);
    t.equal(await wheel.cancel([]), 0);
    const batches = await claimAll(wheel, T0, 10);
    t.same(
      batches.flat().map((entry) => entry.logOffset),
      [1, 3],
    );
  });

  t.test('scheduling the same logOffset again keeps one entry', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    await wheel.schedule('w1', [{ logOffset: 5, deliverAtMs: T0 }], -1);
    await wheel.schedule('w1', [{ logOffset: 5, deliverAtMs: T0 }], -1);
    await wheel.schedule('w1', [{ logOffset: 4, deliverAtMs: T0 }], -1);
    t.same(await wheel.size(), { pending: 2, claims: 0 });
    t.equal((await wheel.mark())?.scheduledLogOffset, 5, 'the mark never goes back');
  });

  t.test('the mark tells a flushed wheel; nothing is added to it', async (t) => {
    const { wheel, redis } = await readyWheel(t, server.url);
    await wheel.schedule('w1', [{ logOffset: 10, deliverAtMs: T0 }], -1);
    await redis.flushall();
    t.equal(await wheel.mark(), null);
    t.equal(await wheel.schedule('w1', [{ logOffset: 20, deliverAtMs: T0 }], -1), 'lost');
    t.same(await wheel.claimDue('w1', T0, T0, 10, LEASE_MS), { status: 'lost' });
    t.equal(await wheel.finishRebuild('w1', 20, 0), 'lost');
    t.same(await wheel.size(), { pending: 0, claims: 0 });
    // The rebuild: a new id, the bulk load, then claims again.
    await wheel.beginRebuild('w2');
    t.same(await wheel.claimDue('w2', T0, T0, 10, LEASE_MS), { status: 'building' });
    t.equal(await wheel.schedule('w1', [{ logOffset: 20, deliverAtMs: T0 }], -1), 'lost');
    t.equal(
      await wheel.schedule(
        'w2',
        [
          { logOffset: 10, deliverAtMs: T0 },
          { logOffset: 20, deliverAtMs: T0 },
        ],
        -1,
      ),
      'ok',
    );
    t.same(await wheel.mark(), { wheelId: 'w2', scheduledLogOffset: 20, state: 'building' });
    t.equal(await wheel.finishRebuild('w2', 20, 0), 'ok');
    const answer = await wheel.claimDue('w2', T0, T0, 10, LEASE_MS);
    t.equal(answer.status === 'ok' ? answer.claim?.entries.length : -1, 2);
  });

  t.test('a rebuild loads entries in any order; finishRebuild sets the mark', async (t) => {
    const { wheel, redis } = await readyWheel(t, server.url);
    await wheel.beginRebuild('w1');
    const entries: WheelEntry[] = [];
    for (let i = 0; i < 23_000; i++)
      entries.push({ logOffset: i * 1_100, deliverAtMs: T0 + ((i * 7_919) % 23_000) });
    t.equal(await wheel.load('w1', entries.reverse()), 'ok');
    t.same(await wheel.mark(), { wheelId: 'w1', scheduledLogOffset: -1, state: 'building' });
    t.equal(await wheel.finishRebuild('w1', 22_999 * 1_100, 23_000), 'ok');
    t.same(await wheel.mark(), {
      wheelId: 'w1',
      scheduledLogOffset: 22_999 * 1_100,
      state: 'ready',
    });
    const claimed = (await claimAll(wheel, T0 + 23_000, MAX_CLAIM)).flat();
    t.equal(claimed.length, 23_000);
    t.ok(claimed.every((entry, i) => entry.deliverAtMs === T0 + i));
    await redis.flushall();
    t.equal(await wheel.load('w1', entries), 'lost');
    t.equal(await wheel.load('w1', []), 'ok');
  });

  t.test('bad input is refused before anything reaches Redis', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    const bad: WheelEntry[] = [
      { logOffset: -1, deliverAtMs: T0 },
      { logOffset: 1.5, deliverAtMs: T0 },
      { logOffset: Number.NaN, deliverAtMs: T0 },
      { logOffset: 2 ** 53, deliverAtMs: T0 },
      { logOffset: 1, deliverAtMs: -5 },
      { logOffset: 1, deliverAtMs: T0 + 0.5 },
    ];
    for (const entry of bad)
      await t.rejects(wheel.schedule('w1', [{ logOffset: 0, deliverAtMs: T0 }, entry], -1), {
        code: 'InvalidArgument',
      });
    t.same(await wheel.size(), { pending: 0, claims: 0 });
    await t.rejects(wheel.schedule('w 1', [], -1), { code: 'InvalidArgument' });
    await t.rejects(wheel.schedule('', [], -1), { code: 'InvalidArgument' });
    await t.rejects(wheel.schedule('w1', [], -2), { code: 'InvalidArgument' });
    await t.rejects(wheel.schedule('w1', [], 0.5), { code: 'InvalidArgument' });
    await t.rejects(wheel.claimDue('w1', T0, T0, 0, LEASE_MS), { code: 'InvalidArgument' });
    await t.rejects(wheel.claimDue('w1', T0, T0, MAX_CLAIM + 1, LEASE_MS), {
      code: 'InvalidArgument',
    });
    await t.rejects(wheel.claimDue('w1', -1, T0, 10, LEASE_MS), { code: 'InvalidArgument' });
    await t.rejects(wheel.claimDue('w1', T0, T0, 10, -1), { code: 'InvalidArgument' });
    await t.rejects(wheel.cancel([-3]), { code: 'InvalidArgument' });
    await t.rejects(wheel.finishRebuild('w1', -2, 0), { code: 'InvalidArgument' });
    await t.rejects(wheel.finishRebuild('w1', 5, -1), { code: 'InvalidArgument' });
    await t.rejects(wheel.finishRebuild('w1', 5, 1.5), { code: 'InvalidArgument' });
  });

  t.test('a same-second storm is claimed in bounded batches, earliest first', async (t) => {
    const { wheel } = await readyWheel(t, server.url);
    const storm: WheelEntry[] = [];
    for (let i = 0; i < 200_000; i++)
      storm.push({ logOffset: i * 1_100, deliverAtMs: T0 + Math.floor(Math.random() * 1000) });
    t.equal(await wheel.schedule('w1', storm, -1), 'ok');
    const batches = await claimAll(wheel, T0 + 999, 5_000);
    t.ok(
      batches.every((batch) => batch.length <= 5_000),
      'no batch over max',
    );
    const claimed = batches.flat();
    t.equal(claimed.length, storm.length);
    t.equal(new Set(claimed.map((entry) => entry.logOffset)).size, storm.length);
    let inversions = 0;
    for (let i = 1; i < claimed.length; i++)
      if (claimed[i].deliverAtMs < claimed[i - 1].deliverAtMs) inversions++;
    t.equal(inversions, 0);
  });
});

/** A wheel on a Redis of its own that can be put back to a snapshot, as a restored backup or a
 *  restart from an older RDB file would. */
async function restorableWheel(t: Test, brokerId: string) {
  const dir = t.testdir();
  let server = await startRedisServer({ dir });
  t.teardown(() => server.stop());
  const keys = new MetaKeys('test');
  let redis = new Redis(server.url, { maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  return {
    wheel: (): RedisScheduleWheel => new RedisScheduleWheel(redis, keys, brokerId),
    snapshot: async (): Promise<void> => {
      await redis.save();
      copyFileSync(join(dir, 'dump.rdb'), join(dir, 'backup.rdb'));
    },
    restore: async (): Promise<void> => {
      redis.disconnect();
      await server.stop();
      copyFileSync(join(dir, 'backup.rdb'), join(dir, 'dump.rdb'));
      server = await startRedisServer({ dir, port: server.port });
      redis = new Redis(server.url, { maxRetriesPerRequest: 0 });
    },
  };
}

t.test('the mark tells a Redis restored from an older snapshot', async (t) => {
  const { wheel, snapshot, restore } = await restorableWheel(t, 'b-restore');
  await wheel().beginRebuild('w1');
  await wheel().finishRebuild('w1', -1, 0);
  t.equal(await wheel().schedule('w1', [{ logOffset: 100, deliverAtMs: T0 }], -1), 'ok');
  await snapshot();
  t.equal(await wheel().schedule('w1', [{ logOffset: 200, deliverAtMs: T0 + 1 }], 100), 'ok');
  // What the broker knows it scheduled: the last schedule record of its log.
  const scheduledByBroker = 200;
  t.equal((await wheel().mark())?.scheduledLogOffset, scheduledByBroker);

  await restore();

  const mark = await wheel().mark();
  t.same(mark, { wheelId: 'w1', scheduledLogOffset: 100, state: 'ready' });
  t.ok(
    mark !== null && mark.scheduledLogOffset < scheduledByBroker,
    'behind the broker: replay its schedule records past the mark',
  );
  // The next live batch does not hide the gap: the broker put entries up to 200 in the wheel,
  // whose mark is at 100, so it is refused (the broker rebuilds) and the mark stays behind.
  t.equal(
    await wheel().schedule('w1', [{ logOffset: 300, deliverAtMs: T0 + 2 }], scheduledByBroker),
    'lost',
  );
  t.same(await wheel().mark(), { wheelId: 'w1', scheduledLogOffset: 100, state: 'ready' });
  t.same(await wheel().size(), { pending: 1, claims: 0 }, 'nothing of the refused batch added');
  // The catch-up from the mark: the records past it go in again; nothing is lost.
  t.equal(await wheel().schedule('w1', [{ logOffset: 200, deliverAtMs: T0 + 1 }], 100), 'ok');
  const answer = await wheel().claimDue('w1', T0 + 1, T0 + 1, 10, LEASE_MS);
  t.same(answer.status === 'ok' ? answer.claim?.entries : null, [
    { logOffset: 100, deliverAtMs: T0 },
    { logOffset: 200, deliverAtMs: T0 + 1 },
  ]);
});

t.test('finishRebuild refuses a load that a restored snapshot undid in part', async (t) => {
  const { wheel, snapshot, restore } = await restorableWheel(t, 'b-reload');
  const first = [100, 200, 300].map((logOffset, i) => ({ logOffset, deliverAtMs: T0 + i }));
  const second = [400, 500].map((logOffset, i) => ({ logOffset, deliverAtMs: T0 + 3 + i }));
  await wheel().beginRebuild('w1');
  t.equal(await wheel().load('w1', first), 'ok');
  await snapshot();
  t.equal(await wheel().load('w1', second), 'ok');

  // Redis comes back from the snapshot taken between the two loads: same wheel id, the second
  // load gone. Marked ready, the wheel would never hand out 400 and 500.
  await restore();

  t.equal(await wheel().finishRebuild('w1', 500, first.length + second.length), 'lost');
  t.same(
    await wheel().mark(),
    { wheelId: 'w1', scheduledLogOffset: -1, state: 'building' },
    'still building: nothing is claimed from it',
  );
  // The broker rebuilds again; a whole load is accepted.
  await wheel().beginRebuild('w2');
  t.equal(await wheel().load('w2', [...second, ...first]), 'ok');
  t.equal(await wheel().finishRebuild('w2', 500, first.length + second.length), 'ok');
  const answer = await wheel().claimDue('w2', T0 + 4, T0 + 4, 10, LEASE_MS);
  t.same(
    answer.status === 'ok' ? answer.claim?.entries.map((entry) => entry.logOffset) : null,
    [100, 200, 300, 400, 500],
  );
});
