// The delay wheel's entries, claims and mark: the shapes the broker (src/broker/schedule-wheel.ts,
// the interface it needs) and meta (RedisScheduleWheel, which implements it in Redis) share.

/** One delayed message: due time and the commit-log position of its schedule record. */
export interface WheelEntry {
  deliverAtMs: number;
  logOffset: number;
}

/** A batch of due entries claimed under one lease. `reclaimed`: the lease of an earlier claim
 *  ran out (a dispatcher died mid-dispatch), so some may have been dispatched already: the
 *  broker's dispatch is idempotent by logOffset. Entries are earliest first. */
export interface WheelClaim {
  claimId: string;
  reclaimed: boolean;
  entries: WheelEntry[];
}

/** The wheel's identity and high-water mark, as Redis holds them now. */
export interface WheelMark {
  /** Set by the last rebuild; another id than the broker's means its wheel was replaced. */
  wheelId: string;
  /** Every entry scheduled up to this logOffset (schedule calls are serialized in log order) is
   *  in the wheel or was claimed from it; -1: none. Behind the broker's own count: a rollback. */
  scheduledLogOffset: number;
  /** `building` between beginRebuild and finishRebuild (claims are refused). */
  state: 'building' | 'ready';
}

export type ClaimResult =
  /** A claim, or none (nothing is due): then `nextDueMs` is the earliest time an entry or a
   *  lease comes due (null: the wheel holds neither). */
  | { status: 'ok'; claim: WheelClaim }
  | { status: 'ok'; claim: null; nextDueMs: number | null }
  /** The wheel is missing or not this broker's: rebuild it. */
  | { status: 'lost' }
  /** A rebuild is under way. */
  | { status: 'building' };
