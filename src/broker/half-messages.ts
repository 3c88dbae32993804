// The undecided half messages of the broker, in memory, for check-back scheduling: per half topic
// a map in publish order (so the oldest, the next to reach the age limit, come first) and a
// min-heap by the time each is next due for an offer. Never the source of truth: decisions live
// in the TransactionLedger, and this index is rebuilt at start from the half topics and the
// ledger. Heap entries are dropped lazily (an entry whose half was decided or re-scheduled is
// skipped when it comes up). Memory: one object (~100 bytes), one map entry and one or two heap
// slots per undecided half message, ≈150 bytes — 100,000 undecided ≈ 15 MB, 1,000,000 ≈ 150 MB.
import { MinHeap } from './min-heap.js';

export interface UndecidedHalf {
  /** The half store topic. */
  half: string;
  queueId: number;
  queueOffset: number;
  logOffset: number;
  storeTimestampMs: number;
  /** Offers made so far. */
  checks: number;
  /** When it is next due (offer, or rollback once out of checks); the heap key it was pushed with. */
  dueMs: number;
  removed: boolean;
}

interface HalfTopicIndex {
  /** By log offset, in publish order. */
  halves: Map<number, UndecidedHalf>;
  due: MinHeap<UndecidedHalf>;
}

export class HalfMessages {
  private readonly topics = new Map<string, HalfTopicIndex>();
  /** Halves offered their last time: rolled back once due, even when nobody asks again. */
  private readonly exhausted = new Set<UndecidedHalf>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(half: UndecidedHalf): void {
    const index = this.topic(half.half);
    if (index.halves.has(half.logOffset)) return;
    index.halves.set(half.logOffset, half);
    index.due.push(half.dueMs, half);
    this.count++;
  }

  get(half: string, logOffset: number): UndecidedHalf | undefined {
    return this.topics.get(half)?.halves.get(logOffset);
  }

  remove(half: string, logOffset: number): void {
    const index = this.topics.get(half);
    const found = index?.halves.get(logOffset);
    if (index === undefined || found === undefined) return;
    index.halves.delete(logOffset);
    found.removed = true;
    this.exhausted.delete(found);
    this.count--;
    if (index.halves.size === 0) this.topics.delete(half);
  }

  /** Moves a half to a later due time (after an offer). */
  reschedule(half: UndecidedHalf, dueMs: number, exhausted: boolean): void {
    half.dueMs = dueMs;
    if (exhausted) this.exhausted.add(half);
    this.topics.get(half.half)?.due.push(dueMs, half);
  }

  /** Up to `max` halves of a half topic due at `nowMs`, taken off the heap (reschedule or
   *  remove each). */
  takeDue(half: string, nowMs: number, max: number): UndecidedHalf[] {
    const index = this.topics.get(half);
    const taken: UndecidedHalf[] = [];
    if (index === undefined) return taken;
    while (taken.length < max) {
      const dueMs = index.due.peekKey();
      if (dueMs === undefined || dueMs > nowMs) break;
      const next = index.due.pop() as UndecidedHalf;
      if (next.removed || next.dueMs !== dueMs) continue; // decided, or pushed again later
      next.dueMs = Infinity; // off the heap until rescheduled
      taken.push(next);
    }
    return taken;
  }

  /** When the next half of this half topic comes due (Infinity: none). */
  nextDueMs(half: string): number {
    return this.topics.get(half)?.due.peekKey() ?? Infinity;
  }

  /** Up to `max` halves stored at or before `storedBeforeMs` (oldest first, every topic). */
  olderThan(storedBeforeMs: number, max: number): UndecidedHalf[] {
    const found: UndecidedHalf[] = [];
    for (const index of this.topics.values()) {
      for (const half of index.halves.values()) {
        if (found.length >= max || half.storeTimestampMs > storedBeforeMs) break;
        found.push(half);
      }
    }
    return found;
  }

  /** Up to `max` halves out of checks whose last answer window has passed. */
  exhaustedDue(nowMs: number, max: number): UndecidedHalf[] {
    const found: UndecidedHalf[] = [];
    for (const half of this.exhausted) {
      if (found.length >= max) break;
      if (half.dueMs <= nowMs) found.push(half);
    }
    return found;
  }

  /** The lowest log offset of an undecided half (Infinity: none), for retention. A walk over
   *  every half: retention asks once a check interval, and 1,000,000 undecided take ~10 ms. */
  minLogOffset(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const index of this.topics.values())
      for (const logOffset of index.halves.keys()) if (logOffset < min) min = logOffset;
    return min;
  }

  /** Forgets every half of a half topic (the topic or its instance was deleted). */
  dropHalfTopic(half: string): void {
    const index = this.topics.get(half);
    if (index === undefined) return;
    for (const found of index.halves.values()) {
      found.removed = true;
      this.exhausted.delete(found);
    }
    this.count -= index.halves.size;
    this.topics.delete(half);
  }

  private topic(half: string): HalfTopicIndex {
    let index = this.topics.get(half);
    if (index === undefined) {
      index = { halves: new Map(), due: new MinHeap() };
      this.topics.set(half, index);
    }
    return index;
  }
}
