// A lease in Redis: one holder at a time for a named piece of work (the alarm evaluation), taken
// with SET NX PX and renewed by its holder before it runs out; a holder that dies or stalls
// loses it after its TTL and another node takes over. Holding is checked by the holder's id, so
// a late renewal or release by a former holder changes nothing.
import type { RepoContext } from './repo-context.js';

export class RedisLease {
  constructor(
    private readonly ctx: RepoContext,
    private readonly key: string,
    /** Unique per process (e.g. host:pid:random). */
    readonly holderId: string,
  ) {}

  /** Takes the lease, or renews it when this holder has it; whether this holder has it now. */
  async hold(ttlMs: number): Promise<boolean> {
    const held = await this.ctx.scripts.run('lease-hold', [this.key], [this.holderId, ttlMs]);
    return held === 1;
  }

  /** Gives the lease back if this holder has it, so another node takes over at once. */
  async release(): Promise<void> {
    await this.ctx.scripts.run('lease-release', [this.key], [this.holderId]);
  }
}
