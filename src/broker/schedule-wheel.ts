// What the broker needs from its delay wheel: the schedule (due time, log position) of each
// delayed message whose record is durable in the commit log, claimed when due under a lease.
// The wheel is never the only copy: its mark lets the broker notice a lost or rolled-back wheel
// and rebuild it from its schedule records. Implemented structurally by meta's RedisScheduleWheel.

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
  /** claim null: nothing is due. */
  | { status: 'ok'; claim: WheelClaim | null }
  /** The wheel is missing or not this broker's: rebuild it. */
  | { status: 'lost' }
  /** A rebuild is under way. */
  | { status: 'building' };

export interface ScheduleWheel {
  /** The wheel's mark; null when it does not exist (never built, or flushed). */
  mark(): Promise<WheelMark | null>;
  /** Adds entries (any number; one call at a time, in log order). 'lost': not added. */
  schedule(wheelId: string, entries: readonly WheelEntry[]): Promise<'ok' | 'lost'>;
  /** Atomically claims, as one batch under a lease until `nowMs + leaseMs`, either a batch
   *  whose lease ran out by `nowMs` (whole, under a new claim id) or up to `max` pending entries
   *  due by `dueUntilMs` (now plus the look-ahead the broker holds in memory to release each at
   *  its exact ms), earliest first. */
  claimDue(
    wheelId: string,
    nowMs: number,
    dueUntilMs: number,
    max: number,
    leaseMs: number,
  ): Promise<ClaimResult>;
  /** Drops a claimed batch once all its entries are dispatched (or found cancelled). False: the
   *  claim was not held any more (its lease ran out and it was claimed again, or the wheel was
   *  rebuilt). */
  complete(claimId: string): Promise<boolean>;
  /** Drops cancelled entries (after the broker logged the cancel) that are not claimed yet, by
   *  logOffset, O(log n) each. Claimed ones are the broker's to skip: it checks its cancel
   *  records before each dispatch. Returns how many were pending. */
  cancel(logOffsets: readonly number[]): Promise<number>;
  /** Gives every claimed entry back to pending (a broker's restart; it alone owns its wheel). */
  releaseClaims(wheelId: string): Promise<number | 'lost'>;
  /** The bulk load of a rebuild (any order, any number; faster than schedule). */
  load(wheelId: string, entries: readonly WheelEntry[]): Promise<'ok' | 'lost'>;
  /** Empties the wheel under a new id in the `building` state; fill it with load(). */
  beginRebuild(wheelId: string): Promise<void>;
  /** Ends a rebuild whose bulk load scheduled every entry up to `scheduledLogOffset`. */
  finishRebuild(wheelId: string, scheduledLogOffset: number): Promise<'ok' | 'lost'>;
}
