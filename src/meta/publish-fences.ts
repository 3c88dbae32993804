// Publish fences in Redis: one hash per broker (requestId → fence record, versioned JSON checked
// on read), written by a gateway before it sends a publish that a broker did not answer to
// another broker, announced on the broker's fence channel (pub/sub) so that it applies the fence
// at once rather than at its next look, read and deleted by that broker once applied
// (broker/publish-fences.ts says what applying means). A fence is small and lives until its broker is back, or until a week
// after the last fence left for it (a decommissioned broker's do not stay for ever); nothing else
// depends on it, so a lost or expired fence costs a possible duplicate, never a lost message.
import type { Redis } from 'ioredis';
import type { PublishFence, PublishFenceSink, PublishFenceSource } from '../model/index.js';
import { watchChannel } from './channel-watch.js';
import type { MetaKeys } from './keys.js';
import { decodeRecord, encodeRecord, PUBLISH_FENCE } from './records.js';

/** How long a broker's fences outlive the last one left for it. A broker back after longer may
 *  deliver the copy of such a call a second time (at least once, as without fences). */
export const FENCE_TTL_SECONDS = 7 * 24 * 3600;

/** The gateway side: leaves fences for any broker. */
export class RedisPublishFenceSink implements PublishFenceSink {
  /** `redis`: the meta connection (MetaStore.redis), whose commands have the meta deadline. */
  constructor(
    private readonly redis: Redis,
    private readonly keys: MetaKeys,
  ) {}

  async add(brokerId: number, fence: PublishFence): Promise<void> {
    const key = this.keys.publishFences(brokerId);
    const results = await this.redis
      .multi()
      .hset(key, fence.requestId, encodeRecord(fence))
      .expire(key, FENCE_TTL_SECONDS)
      .publish(this.keys.publishFenceChannel(brokerId), fence.requestId)
      .exec();
    const failed = results?.find(([error]) => error !== null)?.[0];
    if (results === null) throw new Error(`publish fence for broker ${brokerId} not written`);
    if (failed !== undefined && failed !== null) throw failed;
  }
}

/** The broker side: the fences left for one broker. */
export class RedisPublishFences implements PublishFenceSource {
  private readonly key: string;
  private readonly channel: string;

  constructor(
    private readonly redis: Redis,
    keys: MetaKeys,
    brokerId: number,
  ) {
    this.key = keys.publishFences(brokerId);
    this.channel = keys.publishFenceChannel(brokerId);
  }

  /** Subscribes to this broker's fence channel (channel-watch.ts): `onFence` runs on each
   *  announcement and after each reconnect (the fences themselves are in the hash). */
  watch(onFence: () => void): () => void {
    return watchChannel(this.redis, this.channel, 'wharf-fences-sub', onFence);
  }

  async pending(max: number): Promise<{ fences: PublishFence[]; unreadable: string[] }> {
    const fences: PublishFence[] = [];
    const unreadable: string[] = [];
    // nearly always empty: one HLEN a round, a scan only when something waits
    if ((await this.redis.hlen(this.key)) === 0) return { fences, unreadable };
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.key, cursor, 'COUNT', max);
      for (let i = 0; i + 1 < flat.length && fences.length < max; i += 2) {
        try {
          fences.push(decodeRecord(PUBLISH_FENCE, flat[i + 1], { key: this.key, field: flat[i] }));
        } catch {
          unreadable.push(flat[i]);
        }
      }
      cursor = next;
    } while (cursor !== '0' && fences.length < max);
    return { fences, unreadable };
  }

  async done(requestIds: readonly string[]): Promise<void> {
    if (requestIds.length > 0) await this.redis.hdel(this.key, ...requestIds);
  }
}
