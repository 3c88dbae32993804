// Keyed publishes moved off a down broker, in Redis: a gateway that sends a publish carrying a
// dedupId to another broker's queue because the broker its key hashes to is down remembers where
// it went (one key per dedupId, expiring with the topic's dedup window) and marks the topic on
// the broker (a hash of topics, each with the end of its window). A gateway publishing a dedupId
// of a marked topic to that broker looks it up first, and sends a repeat where the first went: the
// broker it hashes to never saw the first and would store it again. Nothing else depends on it:
// a lost key costs a possible duplicate (at least once), never a message.
import type { Redis } from 'ioredis';
import { dedupScopeKey, type DedupRedirects, type DedupScope } from '../model/index.js';
import type { MetaKeys } from './keys.js';
import type { ScriptRunner } from './scripts.js';

export class RedisDedupRedirects implements DedupRedirects {
  /** `redis`: the meta connection (MetaStore.redis), whose commands have the meta deadline. */
  constructor(
    private readonly redis: Redis,
    private readonly keys: MetaKeys,
    private readonly scripts: ScriptRunner,
  ) {}

  async moved(
    brokerId: number,
    scope: DedupScope,
    moves: readonly { dedupId: string; queueId: number }[],
    windowMs: number,
  ): Promise<void> {
    if (moves.length === 0) return;
    const multi = this.redis.multi();
    for (const { dedupId, queueId } of moves) {
      multi.set(this.idKey(brokerId, scope, dedupId), String(queueId), 'PX', windowMs);
    }
    const results = await multi.exec();
    if (results === null) throw new Error(`dedup moves off broker ${brokerId} not written`);
    const failed = results.find(([error]) => error !== null)?.[0];
    if (failed !== undefined && failed !== null) throw failed;
    // then the topic's mark (a repeat is looked up only for a marked topic): to the end of its
    // window, never shortened
    const now = Date.now();
    await this.scripts.run(
      'dedup-mark',
      [this.keys.dedupMoved(brokerId)],
      [dedupScopeKey(scope), now + windowMs, now, windowMs],
    );
  }

  async movedUntil(brokerId: number): Promise<Map<string, number>> {
    const marks = await this.redis.hgetall(this.keys.dedupMoved(brokerId));
    const until = new Map<string, number>();
    for (const [scope, value] of Object.entries(marks)) {
      const ms = Number(value);
      if (Number.isSafeInteger(ms)) until.set(scope, ms);
    }
    return until;
  }

  async lookup(
    brokerId: number,
    scope: DedupScope,
    dedupIds: readonly string[],
  ): Promise<(number | null)[]> {
    if (dedupIds.length === 0) return [];
    const values = await this.redis.mget(dedupIds.map((id) => this.idKey(brokerId, scope, id)));
    return values.map((value) => {
      const queueId = value === null ? NaN : Number(value);
      return Number.isSafeInteger(queueId) && queueId >= 0 ? queueId : null;
    });
  }

  private idKey(brokerId: number, scope: DedupScope, dedupId: string): string {
    return this.keys.dedupMovedId(brokerId, scope.tenantId, scope.instanceId, scope.topic, dedupId);
  }
}
