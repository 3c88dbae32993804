// What the broker needs from its delay wheel: the schedule (due time, log position) of each
// delayed message whose record is durable in the commit log, claimed when due under a lease.
// The wheel is never the only copy: its mark lets the broker notice a lost or rolled-back wheel
// and rebuild it from its schedule records. Implemented structurally by meta's RedisScheduleWheel.

import type { ClaimResult, WheelEntry, WheelMark } from '../model/index.js';

export type { ClaimResult, WheelClaim, WheelEntry, WheelMark } from '../model/index.js';

export interface ScheduleWheel {
  /** The wheel's mark; null when it does not exist (never built, or flushed). */
  mark(): Promise<WheelMark | null>;
  /** Adds entries (any number; one call at a time, in log order). `heldUpTo`: the mark as this
   *  broker last set it (the highest logOffset it put in the wheel; -1: none) — a wheel whose
   *  mark is below it was rolled back and lost entries. 'lost': not added (not the broker's
   *  wheel, or rolled back). */
  schedule(
    wheelId: string,
    entries: readonly WheelEntry[],
    heldUpTo: number,
  ): Promise<'ok' | 'lost'>;
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
  /** Ends a rebuild whose bulk load scheduled every entry up to `scheduledLogOffset`, `loaded`
   *  entries in all. 'lost': not the broker's wheel, or it holds fewer loaded entries (a rollback
   *  during the load): rebuild again. */
  finishRebuild(
    wheelId: string,
    scheduledLogOffset: number,
    loaded: number,
  ): Promise<'ok' | 'lost'>;
}
