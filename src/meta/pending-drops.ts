// Pending drops in Redis: one hash per broker (dropId → drop record, versioned JSON checked on
// read), written by a gateway when it deletes a topic, group or instance while that broker is down
// (or did not answer the drop), announced on the broker's drop channel (pub/sub) so a broker that
// runs applies it at once, read and deleted by that broker once applied (broker/pending-drops.ts).
// Unlike publish fences, drops never expire: one lost would leave the deleted name's messages,
// cursors or internal topics on the broker, to meet a name created again. A broker id retired
// for good leaves its hash behind (`<prefix>:{drops:<id>}`: delete it with the broker).
import type { Redis } from 'ioredis';
import {
  droppedName,
  dropTenant,
  type PendingDrop,
  type PendingDropSink,
  type PendingDropSource,
} from '../model/index.js';
import { watchChannel } from './channel-watch.js';
import type { MetaKeys } from './keys.js';
import { decodeRecord, encodeRecord, PENDING_DROP } from './records.js';

/** A name field older than this whose drop is gone is stale (its broker applied the drop and
 *  stopped before deleting the field); a younger one may be a drop still being written. */
const STALE_NAME_MS = 60_000;

/** The gateway side: leaves drops for any broker. */
export class RedisPendingDropSink implements PendingDropSink {
  /** `redis`: the meta connection (MetaStore.redis), whose commands have the meta deadline. */
  constructor(
    private readonly redis: Redis,
    private readonly keys: MetaKeys,
  ) {}

  async add(brokerId: number, drop: PendingDrop): Promise<void> {
    // the name first: from now on it is not created again until the drop is applied
    await this.redis.hset(
      this.keys.droppingNames(dropTenant(drop)),
      `${brokerId}/${drop.dropId}`,
      `${drop.droppedAtMs} ${droppedName(drop)}`,
    );
    const results = await this.redis
      .multi()
      .hset(this.keys.pendingDrops(brokerId), drop.dropId, encodeRecord(drop))
      .publish(this.keys.pendingDropChannel(brokerId), drop.dropId)
      .exec();
    if (results === null) throw new Error(`pending drop for broker ${brokerId} not written`);
    const failed = results.find(([error]) => error !== null)?.[0];
    if (failed !== undefined && failed !== null) throw failed;
  }
}

/** The broker side: the drops left for one broker. */
export class RedisPendingDrops implements PendingDropSource {
  private readonly key: string;
  private readonly channel: string;

  constructor(
    private readonly redis: Redis,
    private readonly keys: MetaKeys,
    private readonly brokerId: number,
  ) {
    this.key = keys.pendingDrops(brokerId);
    this.channel = keys.pendingDropChannel(brokerId);
  }

  /** Subscribes to this broker's drop channel (channel-watch.ts): `onDrop` runs on each
   *  announcement and after each reconnect (the drops themselves are in the hash). */
  watch(onDrop: () => void): () => void {
    return watchChannel(this.redis, this.channel, 'wharf-drops-sub', onDrop);
  }

  async pending(max: number): Promise<{ drops: PendingDrop[]; unreadable: string[] }> {
    const drops: PendingDrop[] = [];
    const unreadable: string[] = [];
    // nearly always empty: one HLEN a look, a scan only when something waits
    if ((await this.redis.hlen(this.key)) === 0) return { drops, unreadable };
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.key, cursor, 'COUNT', max);
      for (let i = 0; i + 1 < flat.length && drops.length < max; i += 2) {
        try {
          drops.push(decodeRecord(PENDING_DROP, flat[i + 1], { key: this.key, field: flat[i] }));
        } catch {
          unreadable.push(flat[i]); // one record this version cannot read holds up no other
        }
      }
      cursor = next;
    } while (cursor !== '0' && drops.length < max);
    return { drops, unreadable };
  }

  async done(drops: readonly PendingDrop[]): Promise<void> {
    if (drops.length === 0) return;
    await this.redis.hdel(this.key, ...drops.map((drop) => drop.dropId));
    // then the names (another slot: one call a tenant); a crash between leaves a field that
    // dropsPendingFor finds stale and deletes
    const byTenant = new Map<string, string[]>();
    for (const drop of drops) {
      const tenantId = dropTenant(drop);
      byTenant.set(tenantId, [
        ...(byTenant.get(tenantId) ?? []),
        `${this.brokerId}/${drop.dropId}`,
      ]);
    }
    for (const [tenantId, fields] of byTenant)
      await this.redis.hdel(this.keys.droppingNames(tenantId), ...fields);
  }
}

/**
 * The brokers that still have to apply a drop of `name` (droppedName: `topic <instance>/<topic>`,
 * `group <instance>/<group>`) of the tenant: while one waits, the name must not be created
 * again (the late drop would delete the new one's messages or cursors). Fields whose drop is
 * gone (a broker that applied it and crashed before deleting the field) are deleted.
 */
export async function brokersDropping(
  redis: Redis,
  keys: MetaKeys,
  tenantId: string,
  name: string,
): Promise<number[]> {
  const key = keys.droppingNames(tenantId);
  if ((await redis.hlen(key)) === 0) return [];
  const brokers: number[] = [];
  for (const [field, value] of Object.entries(await redis.hgetall(key))) {
    const space = value.indexOf(' ');
    if (value.slice(space + 1) !== name) continue;
    const slash = field.indexOf('/');
    const brokerId = Number(field.slice(0, slash));
    const dropId = field.slice(slash + 1);
    if (slash > 0 && (await redis.hexists(keys.pendingDrops(brokerId), dropId)) === 1)
      brokers.push(brokerId);
    // stale only once old: a gateway writes the name, then the drop (another call)
    else if (Date.now() - Number(value.slice(0, space)) > STALE_NAME_MS)
      await redis.hdel(key, field);
    else brokers.push(brokerId);
  }
  return brokers;
}
