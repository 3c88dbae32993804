// A broker's delay wheel in Redis: one sorted set of pending entries (member the hex logOffset,
// score deliverAtMs: ~120 B per entry measured, exact ms, earliest first, cancel by ZREM), claimed
// batches kept whole under a lease, and a mark (wheel id, high-water logOffset, state) that tells
// the broker its wheel was flushed or rolled back. Keys are hash-tagged per broker, scripts are
// lua/wheel-*.lua; every call carries the deadline of the meta connection it is given.
import type { Redis } from 'ioredis';
import { WharfError } from '../errors.js';
import type { ClaimResult, WheelClaim, WheelEntry, WheelMark } from '../model/index.js';
import type { MetaKeys } from './keys.js';
import { ScriptRunner } from './scripts.js';

export type { ClaimResult, WheelClaim, WheelEntry, WheelMark };

/** Entries per script call: one call blocks Redis for its run (~1 ms per 1,000 entries). */
export const WHEEL_BATCH = 5_000;
/** The most entries one claim takes (the broker holds them in memory until their ms). */
export const MAX_CLAIM = 10_000;
/** Claimed batches one release call gives back (≤ MAX_CLAIM entries each: ~10 ms a call). */
export const RELEASE_CLAIMS_A_CALL = 2;
/** Bulk-load calls in flight: keeps Redis busy while the next batch is encoded. */
const LOAD_IN_FLIGHT = 4;
const LOST = -7;
const BUILDING = -8;

function checkEntries(entries: readonly WheelEntry[]): void {
  for (const entry of entries) {
    if (
      !Number.isSafeInteger(entry.logOffset) ||
      entry.logOffset < 0 ||
      !Number.isSafeInteger(entry.deliverAtMs) ||
      entry.deliverAtMs < 0
    ) {
      throw new WharfError(
        'InvalidArgument',
        `a wheel entry needs integer logOffset and deliverAtMs ≥ 0, got ${JSON.stringify(entry)}`,
      );
    }
  }
}

function checkNonNegative(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new WharfError('InvalidArgument', `${name} must be an integer ≥ 0, got ${value}`);
}

/** A mark's logOffset: -1 (nothing scheduled) or a logOffset. */
function checkMarkOffset(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < -1)
    throw new WharfError('InvalidArgument', `bad ${name} ${value}`);
}

function checkWheelId(wheelId: string): void {
  if (!/^[\w-]{1,64}$/.test(wheelId))
    throw new WharfError('InvalidArgument', `a wheel id is 1–64 word characters, got ${wheelId}`);
}

function checkLogOffsets(logOffsets: readonly number[]): void {
  for (const logOffset of logOffsets) checkNonNegative('logOffset', logOffset);
}

/** `<logOffsetHex>,<deliverAtMs>,...` as the claim script keeps a batch. */
function parseBatch(batch: string): WheelEntry[] {
  const parts = batch.split(',');
  const entries: WheelEntry[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2)
    entries.push({ logOffset: parseInt(parts[i], 16), deliverAtMs: Number(parts[i + 1]) });
  return entries;
}

export class RedisScheduleWheel {
  private readonly scripts: ScriptRunner;
  private readonly markKey: string;
  private readonly pendingKey: string;
  private readonly claimsKey: string;
  private readonly leasesKey: string;

  /** `redis`: the meta connection (MetaStore.redis), whose commands have the meta deadline. */
  constructor(
    private readonly redis: Redis,
    keys: MetaKeys,
    brokerId: string,
  ) {
    this.scripts = new ScriptRunner(redis);
    this.markKey = keys.wheelMark(brokerId);
    this.pendingKey = keys.wheelPending(brokerId);
    this.claimsKey = keys.wheelClaims(brokerId);
    this.leasesKey = keys.wheelLeases(brokerId);
  }

  async mark(): Promise<WheelMark | null> {
    const [wheelId, scheduled, state] = await this.redis.hmget(
      this.markKey,
      'wheelId',
      'scheduledLogOffset',
      'state',
    );
    if (wheelId === null) return null;
    return {
      wheelId,
      scheduledLogOffset: Number(scheduled ?? -1),
      state: state === 'ready' ? 'ready' : 'building',
    };
  }

  async schedule(
    wheelId: string,
    entries: readonly WheelEntry[],
    heldUpTo: number,
  ): Promise<'ok' | 'lost'> {
    checkWheelId(wheelId);
    checkEntries(entries);
    checkMarkOffset('heldUpTo', heldUpTo);
    // In log order, so that a call cut off midway leaves the mark at a true prefix.
    const sorted = [...entries].sort((a, b) => a.logOffset - b.logOffset);
    let held = heldUpTo;
    for (let first = 0; first < sorted.length; first += WHEEL_BATCH) {
      const batch = sorted.slice(first, first + WHEEL_BATCH);
      const last = batch[batch.length - 1].logOffset;
      const answer = await this.add(wheelId, last, held, batch);
      if (answer === LOST) return 'lost';
      held = Math.max(held, last);
    }
    return 'ok';
  }

  /** The bulk load of a rebuild: any order, any number. Entries go in by due time (a sorted
   *  insert into the skiplist is about twice as fast as a random one), LOAD_IN_FLIGHT calls at
   *  a time; the mark is left to finishRebuild. */
  async load(wheelId: string, entries: readonly WheelEntry[]): Promise<'ok' | 'lost'> {
    checkWheelId(wheelId);
    checkEntries(entries);
    const sorted = [...entries].sort((a, b) => a.deliverAtMs - b.deliverAtMs);
    // Each call's failure is caught at once (no unhandled rejection while an earlier call is
    // awaited) and rethrown after the calls in flight are over.
    let failure: Error | undefined;
    const inFlight: Promise<boolean>[] = [];
    let lost = false;
    for (let first = 0; first < sorted.length; first += WHEEL_BATCH) {
      if (lost || failure !== undefined) break;
      const batch = sorted.slice(first, first + WHEEL_BATCH);
      inFlight.push(
        this.add(wheelId, -1, -1, batch).then(
          (answer) => answer === LOST,
          (err: unknown) => {
            failure ??=
              err instanceof Error
                ? err
                : new WharfError('Internal', 'wheel load failed', { cause: err });
            return false;
          },
        ),
      );
      if (inFlight.length >= LOAD_IN_FLIGHT) lost = (await inFlight.shift()) ?? false;
    }
    for (const answer of await Promise.all(inFlight)) lost ||= answer;
    if (failure !== undefined) throw failure;
    return lost ? 'lost' : 'ok';
  }

  private add(
    wheelId: string,
    markLogOffset: number,
    heldUpTo: number,
    batch: WheelEntry[],
  ): Promise<unknown> {
    const args: (string | number)[] = [wheelId, markLogOffset, heldUpTo];
    for (const entry of batch) args.push(entry.deliverAtMs, entry.logOffset.toString(16));
    return this.scripts.run('wheel-schedule', [this.markKey, this.pendingKey], args);
  }

  async claimDue(
    wheelId: string,
    nowMs: number,
    dueUntilMs: number,
    max: number,
    leaseMs: number,
  ): Promise<ClaimResult> {
    checkWheelId(wheelId);
    checkNonNegative('nowMs', nowMs);
    checkNonNegative('dueUntilMs', dueUntilMs);
    checkNonNegative('leaseMs', leaseMs);
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_CLAIM)
      throw new WharfError('InvalidArgument', `max must be 1–${MAX_CLAIM}, got ${max}`);
    const answer = await this.scripts.run(
      'wheel-claim',
      [this.markKey, this.pendingKey, this.claimsKey, this.leasesKey],
      [wheelId, nowMs, dueUntilMs, max, nowMs + leaseMs],
    );
    if (answer === LOST) return { status: 'lost' };
    if (answer === BUILDING) return { status: 'building' };
    if (!Array.isArray(answer)) throw new WharfError('Internal', 'wheel-claim answered oddly');
    if (answer.length === 1) {
      const next = answer[0] as unknown;
      if (typeof next !== 'number' || !Number.isSafeInteger(next))
        throw new WharfError('Internal', 'wheel-claim answered an odd next due time');
      return { status: 'ok', claim: null, nextDueMs: next < 0 ? null : next };
    }
    if (answer.length !== 3) throw new WharfError('Internal', 'wheel-claim answered oddly');
    const [claimId, reclaimed, batch] = answer as [string, number, string];
    return {
      status: 'ok',
      claim: { claimId, reclaimed: reclaimed === 1, entries: parseBatch(batch) },
    };
  }

  async complete(claimId: string): Promise<boolean> {
    const answers = await this.redis
      .multi()
      .hdel(this.claimsKey, claimId)
      .zrem(this.leasesKey, claimId)
      .exec();
    const [err, removed] = answers?.[0] ?? [new WharfError('Internal', 'complete was discarded')];
    if (err !== null) throw err;
    return removed === 1;
  }

  /** One ZREM, O(log n) per entry: a cancel costs no scan of the wheel. */
  async cancel(logOffsets: readonly number[]): Promise<number> {
    checkLogOffsets(logOffsets);
    if (logOffsets.length === 0) return 0;
    return this.redis.zrem(
      this.pendingKey,
      ...logOffsets.map((logOffset) => logOffset.toString(16)),
    );
  }

  /** Gives every claimed batch back to pending, RELEASE_CLAIMS_A_CALL claims a script call (each
   *  call is bounded; Redis serves others between them). */
  async releaseClaims(wheelId: string): Promise<number | 'lost'> {
    checkWheelId(wheelId);
    let cursor = '0';
    let released = 0;
    do {
      const answer = await this.scripts.run(
        'wheel-release',
        [this.markKey, this.pendingKey, this.claimsKey, this.leasesKey],
        [wheelId, cursor, RELEASE_CLAIMS_A_CALL],
      );
      if (answer === LOST) return 'lost';
      if (!Array.isArray(answer) || answer.length !== 2)
        throw new WharfError('Internal', 'wheel-release answered oddly');
      const [next, count] = answer as unknown[];
      if (typeof next !== 'string' || typeof count !== 'number')
        throw new WharfError('Internal', 'wheel-release answered oddly');
      cursor = next;
      released += count;
    } while (cursor !== '0');
    return released;
  }

  async beginRebuild(wheelId: string): Promise<void> {
    checkWheelId(wheelId);
    await this.scripts.run(
      'wheel-reset',
      [this.markKey, this.pendingKey, this.claimsKey, this.leasesKey],
      [wheelId],
    );
  }

  async finishRebuild(
    wheelId: string,
    scheduledLogOffset: number,
    loaded: number,
  ): Promise<'ok' | 'lost'> {
    checkWheelId(wheelId);
    checkMarkOffset('scheduledLogOffset', scheduledLogOffset);
    checkNonNegative('loaded', loaded);
    const answer = await this.scripts.run(
      'wheel-ready',
      [this.markKey],
      [wheelId, scheduledLogOffset, loaded],
    );
    return answer === LOST ? 'lost' : 'ok';
  }

  /** Pending entries and claimed batches (stats, tests). */
  async size(): Promise<{ pending: number; claims: number }> {
    const [pending, claims] = await Promise.all([
      this.redis.zcard(this.pendingKey),
      this.redis.hlen(this.claimsKey),
    ]);
    return { pending, claims };
  }
}
