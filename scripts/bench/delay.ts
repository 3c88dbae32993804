// Delay-wheel benchmark (issue #14), the wheel alone (no HTTP yet): Redis bytes per pending entry
// and add/claim throughput for (a) one sorted set (the built RedisScheduleWheel), (b) time buckets
// of packed entries appended with APPEND and claimed whole, and (c) BullMQ delayed jobs; then, for
// the built wheel, lateness at a steady due rate, a same-second timer storm (with a PING probe on a
// second connection standing for the ordinary traffic) and the rebuild of a lost wheel.
// Each design runs on a fresh private redis-server (never the shared 6379).
//   npm run bench:delay [-- --pending 1000000 --bull 50000 --rate 5000 --seconds 10 --storm 200000]
//   npm run bench:delay -- --http-only --storm-only   (the end-to-end storm rows alone)
// Then the same figures end to end through a whole node (delay-http.ts); `-- --http-only` runs
// only those.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MinHeap } from '../../src/broker/min-heap.js';
import { MetaKeys } from '../../src/meta/keys.js';
import { startRedisServer, type RedisServerHandle } from '../../src/meta/redis-server.js';
import {
  RedisScheduleWheel,
  WHEEL_BATCH,
  type WheelClaim,
  type WheelEntry,
} from '../../src/meta/schedule-wheel.js';
import { httpRows } from './delay-http.js';
import { summarizeLatencies } from './lib/percentiles.js';
import { type Column, formatCount, formatFixed, formatMs, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const PENDING = flag('pending', 1_000_000);
const BULL = flag('bull', 50_000);
const RATE = flag('rate', 5_000);
const SECONDS = flag('seconds', 10);
const STORM = flag('storm', 200_000);
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Bucket width of design (b). */
const BUCKET_MS = 1_000;
/** How far ahead the ticker claims, to release each entry at its exact ms from memory. */
const LOOKAHEAD_MS = 50;
const TICK_MS = 10;
const LEASE_MS = 30_000;
const CLAIM_MAX = 5_000;

interface Row {
  design: string;
  spread: string;
  count: number;
  usedBytes: number;
  keyBytes: number;
  addPerS: number;
  claimPerS: number;
}

async function withRedis<T>(run: (redis: Redis, server: RedisServerHandle) => Promise<T>) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-delay-'));
  const server = await startRedisServer({ dir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  try {
    return await run(redis, server);
  } finally {
    redis.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

/** Sum of MEMORY USAGE (all nested values sampled) over the keys matching `pattern`. */
async function keyBytes(redis: Redis, pattern: string): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', 0);
    for (const [, bytes] of (await pipeline.exec()) ?? []) total += Number(bytes ?? 0);
  } while (cursor !== '0');
  return total;
}

/** `count` entries, log offsets spaced like 1 KiB records, due uniformly over `spanMs`. */
function entries(count: number, startMs: number, spanMs: number): WheelEntry[] {
  const out: WheelEntry[] = [];
  for (let i = 0; i < count; i++)
    out.push({
      logOffset: 40_000_000_000 + i * 1_100,
      deliverAtMs: startMs + Math.floor(Math.random() * spanMs),
    });
  return out;
}

async function sortedSetDesign(spread: string, spanMs: number): Promise<Row> {
  return withRedis(async (redis) => {
    const wheel = new RedisScheduleWheel(redis, new MetaKeys('bench'), 'b1');
    await wheel.beginRebuild('w1');
    await wheel.finishRebuild('w1', -1, 0);
    const list = entries(PENDING, Date.now() + 60_000, spanMs);
    const before = await usedMemory(redis);
    const addStart = performance.now();
    for (let i = 0; i < list.length; i += WHEEL_BATCH)
      await wheel.schedule('w1', list.slice(i, i + WHEEL_BATCH), -1);
    const addPerS = (PENDING * 1000) / (performance.now() - addStart);
    const usedBytes = (await usedMemory(redis)) - before;
    const bytes = await keyBytes(redis, 'bench:{wheel:b1}:pending');
    const claimStart = performance.now();
    let claimed = 0;
    for (;;) {
      const answer = await wheel.claimDue('w1', Date.now(), Date.now() + 41 * DAY_MS, 5_000, 1);
      if (answer.status !== 'ok' || answer.claim === null) break;
      claimed += answer.claim.entries.length;
      await wheel.complete(answer.claim.claimId);
    }
    const claimPerS = (claimed * 1000) / (performance.now() - claimStart);
    return {
      design: '(a) sorted set',
      spread,
      count: PENDING,
      usedBytes,
      keyBytes: bytes,
      addPerS,
      claimPerS,
    };
  });
}

const BUCKET_ADD = `
-- KEYS[1] bucket index zset   ARGV[1] bucket key prefix   ARGV[2] bucket width ms
-- ARGV[3..] pairs of bucket id, packed 12-byte entries (6 B logOffset, 6 B deliverAtMs)
for i = 3, #ARGV, 2 do
  redis.call('APPEND', ARGV[1] .. ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], 'NX', tonumber(ARGV[i]) * tonumber(ARGV[2]), ARGV[i])
end
return 0`;
const BUCKET_CLAIM = `
-- KEYS[1] bucket index zset   ARGV[1] bucket key prefix   ARGV[2] now ms   ARGV[3] max buckets
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, ARGV[3])
local out = {}
for i = 1, #ids do
  local key = ARGV[1] .. ids[i]
  out[#out + 1] = redis.call('GET', key)
  redis.call('DEL', key)
end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return out`;

async function bucketDesign(spread: string, spanMs: number): Promise<Row> {
  return withRedis(async (redis) => {
    const index = 'bench:{w}:buckets';
    const prefix = 'bench:{w}:b:';
    const list = entries(PENDING, Date.now() + 60_000, spanMs);
    const before = await usedMemory(redis);
    const addStart = performance.now();
    for (let i = 0; i < list.length; i += WHEEL_BATCH) {
      const buckets = new Map<number, Buffer[]>();
      for (const entry of list.slice(i, i + WHEEL_BATCH)) {
        const packed = Buffer.alloc(12);
        packed.writeUIntBE(entry.logOffset, 0, 6);
        packed.writeUIntBE(entry.deliverAtMs, 6, 6);
        const id = Math.floor(entry.deliverAtMs / BUCKET_MS);
        const parts = buckets.get(id);
        if (parts === undefined) buckets.set(id, [packed]);
        else parts.push(packed);
      }
      const argv: (string | Buffer)[] = [prefix, String(BUCKET_MS)];
      for (const [id, parts] of buckets) argv.push(String(id), Buffer.concat(parts));
      await redis.callBuffer('EVAL', [BUCKET_ADD, 1, index, ...argv]);
    }
    const addPerS = (PENDING * 1000) / (performance.now() - addStart);
    const usedBytes = (await usedMemory(redis)) - before;
    const bytes = (await keyBytes(redis, `${prefix}*`)) + (await keyBytes(redis, index));
    const claimStart = performance.now();
    let claimed = 0;
    for (;;) {
      // Whole buckets, up to ~5,000 entries a call at the dense spread.
      const answer = await redis.callBuffer('EVAL', [
        BUCKET_CLAIM,
        1,
        index,
        prefix,
        String(Date.now() + 41 * DAY_MS),
        spanMs > DAY_MS ? '5000' : '18',
      ]);
      const parts = answer as Buffer[];
      if (parts.length === 0) break;
      for (const part of parts) {
        // The broker's side: unpack and order the bucket by due ms.
        const due: number[] = [];
        for (let at = 0; at < part.length; at += 12) due.push(part.readUIntBE(at + 6, 6));
        due.sort((x, y) => x - y);
        claimed += due.length;
      }
    }
    const claimPerS = (claimed * 1000) / (performance.now() - claimStart);
    return {
      design: `(b) ${BUCKET_MS / 1000} s buckets`,
      spread,
      count: PENDING,
      usedBytes,
      keyBytes: bytes,
      addPerS,
      claimPerS,
    };
  });
}

async function bullDesign(spread: string, spanMs: number): Promise<Row> {
  return withRedis(async (redis, server) => {
    const queue = new Queue('bench-delay', { connection: { port: server.port } });
    await queue.waitUntilReady();
    const before = await usedMemory(redis);
    const addStart = performance.now();
    for (let i = 0; i < BULL; i += 1_000) {
      const jobs = [];
      for (let j = i; j < Math.min(BULL, i + 1_000); j++)
        jobs.push({
          name: 'd',
          data: { logOffset: 40_000_000_000 + j * 1_100 },
          opts: { delay: 60_000 + Math.floor(Math.random() * spanMs), removeOnComplete: true },
        });
      await queue.addBulk(jobs);
    }
    const addPerS = (BULL * 1000) / (performance.now() - addStart);
    const usedBytes = (await usedMemory(redis)) - before;
    const bytes = await keyBytes(redis, 'bull:bench-delay:*');
    const claimStart = performance.now();
    // Delayed → wait for every job: BullMQ's move of due jobs (a Worker would then fetch each).
    await queue.promoteJobs({ count: 5_000 });
    const claimPerS = (BULL * 1000) / (performance.now() - claimStart);
    await queue.close();
    return {
      design: '(c) BullMQ delayed jobs',
      spread,
      count: BULL,
      usedBytes,
      keyBytes: bytes,
      addPerS,
      claimPerS,
    };
  });
}

/** The broker's side of a claim, for lateness: hold claimed entries in a heap, release each at
 *  its exact ms, complete a claim once all its entries are out. Returns lateness samples (ms). */
async function runTicker(
  wheel: RedisScheduleWheel,
  total: number,
  onClaim?: (claim: WheelClaim) => void,
): Promise<number[]> {
  interface Held {
    deliverAtMs: number;
    claim: { claimId: string; left: number };
  }
  const heap = new MinHeap<Held>();
  const lateness: number[] = [];
  let done: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    timer = undefined;
    const now = Date.now();
    while ((heap.peekKey() ?? Infinity) <= now) {
      const held = heap.pop() as Held;
      lateness.push(now - held.deliverAtMs);
      if (--held.claim.left === 0) done.push(held.claim.claimId);
    }
    arm();
  };
  const arm = (): void => {
    const next = heap.peekKey();
    if (next === undefined || timer !== undefined) return;
    timer = setTimeout(release, Math.max(0, next - Date.now()));
  };
  while (lateness.length < total) {
    const now = Date.now();
    const answer = await wheel.claimDue('w1', now, now + LOOKAHEAD_MS, CLAIM_MAX, LEASE_MS);
    if (answer.status !== 'ok') throw new Error(`claim: ${answer.status}`);
    const claim = answer.claim;
    if (claim !== null) {
      onClaim?.(claim);
      const counter = { claimId: claim.claimId, left: claim.entries.length };
      for (const entry of claim.entries)
        heap.push(entry.deliverAtMs, { deliverAtMs: entry.deliverAtMs, claim: counter });
      if (timer !== undefined && (heap.peekKey() ?? Infinity) <= Date.now()) {
        clearTimeout(timer);
        timer = undefined;
      }
      arm();
    }
    for (const claimId of done) await wheel.complete(claimId);
    done = [];
    if (claim === null || claim.entries.length < CLAIM_MAX)
      await new Promise((r) => setTimeout(r, TICK_MS));
  }
  if (timer !== undefined) clearTimeout(timer);
  for (const claimId of done) await wheel.complete(claimId);
  return lateness;
}

interface Timing {
  what: string;
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  note: string;
}

async function timings(): Promise<Timing[]> {
  return withRedis(async (redis, server) => {
    const wheel = new RedisScheduleWheel(redis, new MetaKeys('bench'), 'b1');
    await wheel.beginRebuild('w1');
    await wheel.finishRebuild('w1', -1, 0);
    const rows: Timing[] = [];

    // Steady rate: RATE due per second for SECONDS, scheduled ahead.
    const steady = RATE * SECONDS;
    const startMs = Date.now() + 2_000;
    const list: WheelEntry[] = [];
    for (let i = 0; i < steady; i++)
      list.push({ logOffset: i * 1_100, deliverAtMs: startMs + Math.floor((i * 1000) / RATE) });
    await wheel.schedule('w1', list, -1);
    const steadyLate = summarizeLatencies(await runTicker(wheel, steady));
    rows.push({
      what: `lateness at ${formatCount(RATE)} due/s`,
      ...steadyLate,
      note: `released from memory at the ms; look-ahead ${LOOKAHEAD_MS} ms, tick ${TICK_MS} ms`,
    });

    // Storm: STORM entries due within one second, while a second connection PINGs.
    const stormSecond = Math.ceil((Date.now() + 5_000) / 1000) * 1000;
    const storm: WheelEntry[] = [];
    for (let i = 0; i < STORM; i++)
      storm.push({
        logOffset: 1e9 + i * 1_100,
        deliverAtMs: stormSecond + Math.floor(Math.random() * 1000),
      });
    await wheel.schedule('w1', storm, -1);
    const probe = new Redis(server.url);
    const pings: number[] = [];
    let probing = true;
    const probing$ = (async () => {
      while (probing) {
        const at = performance.now();
        await probe.ping();
        pings.push(performance.now() - at);
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    let lastDue = 0;
    let inversions = 0;
    let lastClaimAt = 0;
    const stormLate = await runTicker(wheel, STORM, (claim) => {
      for (const entry of claim.entries) {
        if (entry.deliverAtMs < lastDue) inversions++;
        lastDue = Math.max(lastDue, entry.deliverAtMs);
      }
      lastClaimAt = Date.now();
    });
    probing = false;
    await probing$;
    probe.disconnect();
    rows.push({
      what: `storm: ${formatCount(STORM)} due in one second`,
      ...summarizeLatencies(stormLate),
      note: `last claimed ${formatFixed((lastClaimAt - stormSecond) / 1000, 2)} s after the second began; ${inversions} order inversions`,
    });
    const ping = summarizeLatencies(pings);
    rows.push({
      what: 'PING on another connection during the storm',
      ...ping,
      note: 'the ordinary traffic sharing this Redis',
    });

    // Rebuild: a lost wheel reloaded with PENDING entries (as read from the schedule records).
    const rebuildList = entries(PENDING, Date.now() + HOUR_MS, 40 * DAY_MS);
    const rebuildStart = performance.now();
    await wheel.beginRebuild('w2');
    await wheel.load('w2', rebuildList);
    await wheel.finishRebuild(
      'w2',
      rebuildList[rebuildList.length - 1].logOffset,
      rebuildList.length,
    );
    const rebuildMs = performance.now() - rebuildStart;
    rows.push({
      what: `rebuild of ${formatCount(PENDING)} pending`,
      count: PENDING,
      p50Ms: Number.NaN,
      p99Ms: Number.NaN,
      maxMs: rebuildMs,
      note: `${formatCount((PENDING * 1000) / rebuildMs)} entries/s, wheel side only`,
    });
    return rows;
  });
}

async function main(): Promise<void> {
  if (args.includes('--http-only')) return printHttpRows();
  const rows: Row[] = [];
  for (const [spread, spanMs] of [
    ['40 days', 40 * DAY_MS],
    ['1 hour', HOUR_MS],
  ] as const) {
    rows.push(await sortedSetDesign(spread, spanMs));
    rows.push(await bucketDesign(spread, spanMs));
  }
  rows.push(await bullDesign('40 days', 40 * DAY_MS));
  const columns: Column[] = [
    { header: 'design' },
    { header: 'due over' },
    { header: 'pending', align: 'right' },
    { header: 'used_memory B/entry', align: 'right' },
    { header: 'MEMORY USAGE B/entry', align: 'right' },
    { header: 'add/s', align: 'right' },
    { header: 'claim/s', align: 'right' },
  ];
  console.log('');
  console.log(
    formatTable(
      columns,
      rows.map((row) => [
        row.design,
        row.spread,
        formatCount(row.count),
        formatFixed(row.usedBytes / row.count, 1),
        formatFixed(row.keyBytes / row.count, 1),
        formatCount(row.addPerS),
        formatCount(row.claimPerS),
      ]),
    ),
  );
  console.log('');
  console.log('Goal: ≤ 150 B per pending entry (10M pending in a 2 GB Redis).');
  console.log('');
  const timed = await timings();
  console.log(
    formatTable(
      [
        { header: 'built wheel (a)' },
        { header: 'entries', align: 'right' },
        { header: 'p50 ms', align: 'right' },
        { header: 'p99 ms', align: 'right' },
        { header: 'max ms', align: 'right' },
        { header: 'note' },
      ],
      timed.map((row) => [
        row.what,
        formatCount(row.count),
        formatMs(row.p50Ms),
        formatMs(row.p99Ms),
        formatMs(row.maxMs),
        row.note,
      ]),
    ),
  );
  console.log('');
  console.log('Goals: lateness p99 < 100 ms; a storm delivered within 5 s of its second.');
  await printHttpRows();
}

/** End to end through a whole node (delay-http.ts). */
async function printHttpRows(): Promise<void> {
  const rows = await httpRows({
    seconds: SECONDS,
    rate: RATE,
    storm: STORM,
    connections: flag('connections', 32),
    stormOnly: args.includes('--storm-only'),
  });
  console.log('');
  console.log(
    formatTable(
      [{ header: 'end to end (node)' }, { header: 'figure', align: 'right' }, { header: 'note' }],
      rows.map((row) => [row.what, row.value, row.note]),
    ),
  );
}

await main();
