// The broker registry in Redis (the role RocketMQ's NameServer plays): a broker claims its id
// with a lease (SET NX PX under an owner token, renewed every second, TTL 4 s), writes its record
// (address, owner) — a broker process only once its store has recovered and its RPC server
// listens, so no gateway routes to it before it can serve — and announces the change on a pub/sub
// channel; a gateway's BrokerDirectory
// keeps a local table of every registered broker and whether it holds its lease, updated by the
// announcements plus a periodic refresh, so a dead broker is noticed within TTL + refresh (< 5 s).
// While Redis is away the table keeps its last state (warm routes keep serving) and a broker keeps
// serving on its lease's last word; a lease lost to another owner stops the broker.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { WharfError, errorMessage } from '../errors.js';
import type { MetaKeys } from './keys.js';
import { BROKER, decodeRecord, encodeRecord } from './records.js';
import type { ScriptRunner } from './scripts.js';
import type { BrokerRecord } from './types.js';

/** What the registry logs through (the meta room's logger). */
export interface RegistryLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const BROKER_LEASE_TTL_MS = 4000;
export const BROKER_RENEW_MS = 1000;
export const BROKER_REFRESH_MS = 1000;
/** The script code for "another owner holds the lease". */
const HELD_BY_ANOTHER = -8;

export interface BrokerLeaseOptions {
  brokerId: number;
  address: string;
  ttlMs?: number;
  renewMs?: number;
  logger?: RegistryLogger;
  /** Called once when another process took the id (this broker must stop serving). */
  onLost?: () => void;
  /** Writes the record (gateways route here) with the claim. Default true; a broker that must
   *  recover its store first passes false — it holds its id, but a gateway sees it as not
   *  registered (a restart: down) — and calls `register()` once it serves. */
  registerAtClaim?: boolean;
  /** Held by another owner: keep trying for as long as a lease outlives a holder that stopped
   *  renewing (ttl + one renewal), so a broker restarted right after a crash takes its id back
   *  once its predecessor's lease lapses, while a live holder (renewing) is still refused.
   *  Default false: refused at once. */
  waitForLapse?: boolean;
  /** The owner token the lease is held under. Default: a new random one for each claim. */
  owner?: string;
  /** Held by an owner token starting with this (an earlier run on the same data dir): taken
   *  back once Redis shows the holder two renewals late rather than after the lease lapses; a
   *  holder that renews (a live copy of the data dir) is refused at once. */
  takeBackFrom?: string;
}

/** How often a claim waiting for a lapse tries again. */
const LAPSE_RETRY_MS = 250;

/** A broker's hold on its id: claimed at start, renewed in the background, released at stop. */
export class BrokerLease {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | null = null;
  private redisAway = false;
  private closed = false;
  /** The record is in the registry (or is written again when the lease is taken again). */
  private registered: boolean;

  private constructor(
    private readonly redis: Redis,
    private readonly keys: MetaKeys,
    private readonly scripts: ScriptRunner,
    private readonly options: Required<
      Omit<
        BrokerLeaseOptions,
        'logger' | 'onLost' | 'registerAtClaim' | 'waitForLapse' | 'owner' | 'takeBackFrom'
      >
    > &
      Pick<BrokerLeaseOptions, 'logger' | 'onLost'>,
    readonly record: BrokerRecord,
    registerAtClaim: boolean,
  ) {
    this.registered = registerAtClaim;
  }

  /**
   * Claims `brokerId` and starts renewing. Throws a Conflict naming the holder's address when a
   * live broker has the id (its lease has not expired).
   */
  static async claim(
    redis: Redis,
    keys: MetaKeys,
    scripts: ScriptRunner,
    options: BrokerLeaseOptions,
  ): Promise<BrokerLease> {
    const record: BrokerRecord = {
      brokerId: options.brokerId,
      address: options.address,
      owner: options.owner ?? randomBytes(12).toString('base64url'),
      startedAt: Date.now(),
    };
    const lease = new BrokerLease(
      redis,
      keys,
      scripts,
      {
        ...options,
        ttlMs: options.ttlMs ?? BROKER_LEASE_TTL_MS,
        renewMs: options.renewMs ?? BROKER_RENEW_MS,
      },
      record,
      options.registerAtClaim ?? true,
    );
    let answer = await lease.runScript('broker-claim');
    let live = false;
    if (answer === HELD_BY_ANOTHER && options.takeBackFrom !== undefined) {
      const taken = await lease.takeBack(options.takeBackFrom);
      // the record (when registered at claim) is written by the claim that follows
      if (taken === 'taken' || taken === 'free') answer = await lease.runScript('broker-claim');
      live = taken === 'live';
    }
    if (answer === HELD_BY_ANOTHER && options.waitForLapse === true && !live) {
      const waitMs = lease.options.ttlMs + lease.options.renewMs;
      const holder = await readBroker(redis, keys, options.brokerId).catch(() => null);
      options.logger?.warn(
        { brokerId: options.brokerId, holder: holder?.address, waitMs },
        'broker id held by another process: waiting for its lease to lapse (a crashed predecessor) or to be refused (a live one)',
      );
      const deadline = Date.now() + waitMs;
      while (answer === HELD_BY_ANOTHER && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, LAPSE_RETRY_MS));
        answer = await lease.runScript('broker-claim');
      }
    }
    if (answer === HELD_BY_ANOTHER) {
      const holder = await readBroker(redis, keys, options.brokerId).catch(() => null);
      throw new WharfError(
        'Conflict',
        `broker id ${options.brokerId} is held by a live broker` +
          (holder === null ? '' : ` at ${holder.address}`) +
          ` (its lease expires ${lease.options.ttlMs} ms after it stops renewing)`,
      );
    }
    await lease.announce();
    lease.timer = setInterval(() => void lease.renew(), lease.options.renewMs);
    lease.timer.unref();
    return lease;
  }

  /**
   * Writes this broker's record and announces it: gateways route here from now on. A broker that
   * claimed with `registerAtClaim: false` calls it once its store has recovered and its RPC
   * server listens. Throws a Conflict when another process took the id meanwhile.
   */
  async register(): Promise<void> {
    this.registered = true;
    if ((await this.runScript('broker-claim')) === HELD_BY_ANOTHER) {
      throw new WharfError(
        'Conflict',
        `broker id ${this.record.brokerId} was taken by another process while this one recovered`,
      );
    }
    await this.announce();
  }

  /** Takes the lease from a holder whose token starts with `prefix` (an earlier run of this
   *  data dir) once Redis shows it went two renewals without renewing (a crash): 'taken'; 'live'
   *  when it kept renewing for as long as a lease lasts (a live copy of the data dir); 'free' or
   *  'other' for the usual claim to go on. */
  private async takeBack(prefix: string): Promise<'taken' | 'live' | 'free' | 'other'> {
    const key = this.keys.brokerLease(this.record.brokerId);
    const { ttlMs, renewMs } = this.options;
    const deadline = Date.now() + ttlMs + renewMs;
    for (;;) {
      const answer = Number(
        await this.scripts.run(
          'broker-take-over',
          [key],
          [prefix, this.record.owner, ttlMs, ttlMs - 2 * renewMs],
        ),
      );
      if (answer === 1) break;
      if (answer === 0) return 'free';
      if (answer === HELD_BY_ANOTHER) return 'other';
      if (Date.now() >= deadline) return 'live';
      await new Promise((resolve) => setTimeout(resolve, LAPSE_RETRY_MS));
    }
    this.options.logger?.warn(
      { brokerId: this.record.brokerId },
      'broker id taken back from an earlier run of this data dir that stopped renewing (a crash)',
    );
    return 'taken';
  }

  private async runScript(name: 'broker-claim' | 'broker-renew'): Promise<number> {
    // an empty record: the lease alone (a broker still recovering is not registered)
    const record = this.registered ? encodeRecord(this.record) : '';
    const answer = await this.scripts.run(
      name,
      [this.keys.brokerLease(this.record.brokerId), this.keys.brokerRegistry()],
      [this.record.brokerId, this.record.owner, this.options.ttlMs, record],
    );
    return Number(answer);
  }

  private async announce(): Promise<void> {
    await this.redis.publish(this.keys.brokerChannel(), String(this.record.brokerId));
  }

  private renew(): Promise<void> {
    // one renewal at a time: a slow Redis must not stack them up
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (this.closed) return;
    let answer: number;
    try {
      answer = await this.runScript('broker-renew');
    } catch (err) {
      if (!this.redisAway) {
        this.redisAway = true;
        this.options.logger?.warn(
          { err: errorMessage(err), brokerId: this.record.brokerId },
          'cannot renew the broker lease (Redis unreachable): serving on, retrying every second',
        );
      }
      return;
    }
    if (this.redisAway) {
      this.redisAway = false;
      this.options.logger?.info({ brokerId: this.record.brokerId }, 'broker lease renewed again');
    }
    if (answer === 2) await this.announce().catch(() => undefined);
    if (answer === HELD_BY_ANOTHER && !this.closed) {
      this.closed = true;
      clearInterval(this.timer);
      this.options.logger?.error(
        { brokerId: this.record.brokerId },
        'another process took this broker id while Redis could not renew the lease: stopping',
      );
      this.options.onLost?.();
    }
  }

  /** Stops renewing and gives the lease up, so gateways see this broker down at once. */
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.renewing;
    try {
      await this.scripts.run(
        'broker-release',
        [this.keys.brokerLease(this.record.brokerId)],
        [this.record.owner],
      );
      await this.announce();
    } catch (err) {
      // Redis away: the lease expires on its own within its TTL
      this.options.logger?.warn(
        { err: errorMessage(err) },
        'could not release the broker lease (it expires on its own)',
      );
    }
  }
}

async function readBroker(redis: Redis, keys: MetaKeys, brokerId: number) {
  const key = keys.brokerRegistry();
  const json = await redis.hget(key, String(brokerId));
  return json === null ? null : decodeRecord(BROKER, json, { key, field: String(brokerId) });
}

/** A registered broker as a gateway sees it. */
export interface BrokerEntry extends BrokerRecord {
  /** Holds its lease (renewed within the TTL). */
  live: boolean;
}

export interface BrokerDirectoryOptions {
  refreshMs?: number;
  logger?: RegistryLogger;
}

/**
 * A gateway's view of the registry: every registered broker and whether it is live. Refreshed on
 * every announcement and every `refreshMs`; listeners hear each refresh that changed something.
 */
export class BrokerDirectory {
  private table = new Map<number, BrokerEntry>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;
  private again = false;
  private readonly listeners = new Set<(table: ReadonlyMap<number, BrokerEntry>) => void>();
  private redisAway = false;
  private closed = false;

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly keys: MetaKeys,
    private readonly options: BrokerDirectoryOptions,
  ) {}

  /** Reads the registry once (a failure throws: a gateway must know its brokers to start) and
   *  starts following it. */
  static async open(
    redis: Redis,
    keys: MetaKeys,
    options: BrokerDirectoryOptions = {},
  ): Promise<BrokerDirectory> {
    const subscriber = redis.duplicate({ connectionName: 'wharf-brokers-sub' });
    const directory = new BrokerDirectory(redis, subscriber, keys, options);
    subscriber.on('error', () => undefined); // reconnects on its own; the refresh covers the gap
    subscriber.on('message', () => void directory.refresh());
    // messages missed while the subscriber was away: the next refresh reads the truth
    subscriber.on('ready', () => void directory.refresh());
    try {
      if (subscriber.status === 'wait') await subscriber.connect();
      await subscriber.subscribe(keys.brokerChannel());
      await directory.refreshOnce(true);
    } catch (err) {
      subscriber.disconnect();
      throw err;
    }
    directory.timer = setInterval(
      () => void directory.refresh(),
      options.refreshMs ?? BROKER_REFRESH_MS,
    );
    directory.timer.unref();
    return directory;
  }

  get brokers(): ReadonlyMap<number, BrokerEntry> {
    return this.table;
  }

  onChange(listener: (table: ReadonlyMap<number, BrokerEntry>) => void): void {
    this.listeners.add(listener);
  }

  /** Reads the registry again now (coalesced: at most one read in flight, one queued). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.refreshing !== null) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = this.refreshOnce(false).finally(() => {
      this.refreshing = null;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.refreshing;
  }

  private async refreshOnce(strict: boolean): Promise<void> {
    let next: Map<number, BrokerEntry>;
    try {
      next = await this.read();
    } catch (err) {
      if (strict) throw err;
      if (!this.redisAway) {
        this.redisAway = true;
        this.options.logger?.warn(
          { err: errorMessage(err) },
          'cannot read the broker registry: routing on the last known brokers',
        );
      }
      return;
    }
    if (this.redisAway) {
      this.redisAway = false;
      this.options.logger?.info({}, 'broker registry readable again');
    }
    const changed = describe(next) !== describe(this.table);
    this.table = next;
    if (changed) for (const listener of this.listeners) listener(next);
  }

  private async read(): Promise<Map<number, BrokerEntry>> {
    const key = this.keys.brokerRegistry();
    const records = Object.entries(await this.redis.hgetall(key)).map(([field, json]) =>
      decodeRecord(BROKER, json, { key, field }),
    );
    const owners =
      records.length === 0
        ? []
        : await this.redis.mget(...records.map((r) => this.keys.brokerLease(r.brokerId)));
    const table = new Map<number, BrokerEntry>();
    records
      .sort((a, b) => a.brokerId - b.brokerId)
      .forEach((record, i) =>
        table.set(record.brokerId, { ...record, live: owners[i] === record.owner }),
      );
    return table;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.subscriber.disconnect();
  }
}

function describe(table: ReadonlyMap<number, BrokerEntry>): string {
  return [...table.values()].map((b) => `${b.brokerId}@${b.address}/${b.owner}/${b.live}`).join();
}
