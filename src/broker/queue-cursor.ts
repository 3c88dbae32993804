// One consumer's progress through one queue (POP style, as RocketMQ 5 and SQS consume):
// every offset below `ackOffset` is done; each offset in [ackOffset, pullOffset) is either in
// flight (handed out, not yet acked), done (acked, filtered out, dead-lettered) or owed (handed
// out by a delivery whose journal entry was lost: to be delivered again, kept as ranges and put
// in flight a batch at a time, see admitOwed); offsets from `pullOffset` on were never handed out.
// Pure state: the broker journals each change it applies, and replaying the same calls rebuilds
// the same cursor (an owed offset and one admitted in flight at attempt 0, due now, are the same
// state to every entry). `epoch` changes whenever the cursor is moved (reset, clamp, retention
// skip), so work started before the move can tell it is stale.
import { MinHeap } from './min-heap.js';
import { OffsetRanges } from './offset-ranges.js';

export interface Inflight {
  attempt: number;
  firstDeliveryMs: number;
  /** End of the current delivery's invisibility (API.md's nextVisibleTime). */
  nextVisibleMs: number;
  /** When it may be handed out again or dead-lettered: invisibility end plus retry back-off. */
  redeliverAtMs: number;
}

export interface Delivery extends Inflight {
  queueOffset: number;
}

interface DueEntry {
  queueOffset: number;
  attempt: number;
  redeliverAtMs: number;
}

export interface CursorSnapshot {
  ackOffset: number;
  pullOffset: number;
  /** [queueOffset, attempt, firstDeliveryMs, nextVisibleMs, redeliverAtMs] */
  inflight: [number, number, number, number, number][];
  done: [number, number][];
  /** Owed offsets as [start, end) ranges (absent: none). */
  owed?: [number, number][];
  /** Resets applied (absent: none). */
  resets?: number;
}

/**
 * A receipt handle's attempt field (u16) carries the delivery's attempt (at most 1000, below
 * ATTEMPT_SPAN) plus ATTEMPT_SPAN times the cursor's reset generation (resets mod 64); the rest of
 * the reset count (resets / 64, the epoch) goes into the handle's tag (receipt-handle.ts). A reset
 * replays messages from attempt 1 again: without the generation a handle of the delivery before
 * the reset would name the replayed one (same queue, offset, attempt) and ack it behind its
 * consumer's back. Handles issued before any reset are unchanged (generation 0, epoch 0).
 */
const ATTEMPT_SPAN = 1024;
const RESET_GENERATIONS = 64;

/** An owed offset put in flight: attempt 0 (never delivered as far as the journal knows), due now. */
const DUE_NOW: Inflight = { attempt: 0, firstDeliveryMs: 0, nextVisibleMs: 0, redeliverAtMs: 0 };

/** Stale due-heap entries tolerated beyond twice the live ones before the heap is rebuilt. */
const COMPACT_SLACK = 64;

export class QueueCursor {
  ackOffset: number;
  pullOffset: number;
  epoch = 0;
  /** Resets applied to this cursor (durable: journaled entries, and the snapshot). */
  resets = 0;
  readonly inflight = new Map<number, Inflight>();
  private readonly done = new OffsetRanges();
  /** Offsets a lost delivery entry handed out, not in flight yet: one range per such gap, however
   *  long (a replay over a long disk-full period may owe millions), not one entry per offset. */
  private readonly owed = new OffsetRanges();
  private readonly due = new MinHeap<DueEntry>();
  /** Offsets being dead-lettered: never due meanwhile. Not part of the snapshot, so a restart
   *  retries the move. */
  private readonly held = new Set<number>();

  constructor(startOffset: number) {
    this.ackOffset = startOffset;
    this.pullOffset = startOffset;
  }

  static fromSnapshot(snapshot: CursorSnapshot): QueueCursor {
    const cursor = new QueueCursor(snapshot.ackOffset);
    cursor.pullOffset = snapshot.pullOffset;
    cursor.resets = snapshot.resets ?? 0;
    for (const [start, end] of snapshot.done) cursor.done.addRange(start, end);
    for (const [start, end] of snapshot.owed ?? []) cursor.owed.addRange(start, end);
    for (const [
      offset,
      attempt,
      firstDeliveryMs,
      nextVisibleMs,
      redeliverAtMs,
    ] of snapshot.inflight) {
      cursor.track(offset, {
        attempt,
        firstDeliveryMs,
        nextVisibleMs,
        // a non-finite time (written by an older snapshot) means "due now"
        redeliverAtMs: Number.isFinite(redeliverAtMs) ? redeliverAtMs : 0,
      });
    }
    return cursor;
  }

  snapshot(): CursorSnapshot {
    const inflight: CursorSnapshot['inflight'] = [];
    for (const [offset, entry] of this.inflight) {
      inflight.push([
        offset,
        entry.attempt,
        entry.firstDeliveryMs,
        entry.nextVisibleMs,
        entry.redeliverAtMs,
      ]);
    }
    return {
      ackOffset: this.ackOffset,
      pullOffset: this.pullOffset,
      inflight,
      done: this.done.pairs(),
      ...(this.owed.rangeCount > 0 ? { owed: this.owed.pairs() } : {}),
      ...(this.resets > 0 ? { resets: this.resets } : {}),
    };
  }

  /** The attempt field of a receipt handle for a delivery of this cursor (see ATTEMPT_SPAN). */
  receiptAttempt(attempt: number): number {
    return attempt + ATTEMPT_SPAN * (this.resets % RESET_GENERATIONS);
  }

  /** The reset epoch of a receipt handle for a delivery of this cursor (see ATTEMPT_SPAN). */
  get receiptEpoch(): number {
    return Math.floor(this.resets / RESET_GENERATIONS);
  }

  /** Whether a receipt handle's attempt field and epoch name the current delivery of
   *  `queueOffset`. */
  isCurrentReceipt(queueOffset: number, receiptAttempt: number, epoch = 0): boolean {
    return (
      epoch * RESET_GENERATIONS + Math.floor(receiptAttempt / ATTEMPT_SPAN) === this.resets &&
      this.isCurrent(queueOffset, receiptAttempt % ATTEMPT_SPAN)
    );
  }

  /** Offsets handed out and not done (in flight); owed offsets are not counted until admitted. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Whether an owed offset lies below every in-flight one: in FIFO order it goes next, so it
   *  is admitted whatever the in-flight limit (nothing above it is handed out before it). */
  owedBelowInflight(): boolean {
    const first = this.owed.first;
    if (first === undefined) return false;
    for (const offset of this.inflight.keys()) if (offset < first) return false;
    return true;
  }

  /** Offsets owed a delivery again, not in flight yet (see admitOwed). */
  get owedCount(): number {
    return this.owed.size;
  }

  /**
   * Puts up to `max` owed offsets in flight, lowest first, at attempt 0 and due now (their next
   * delivery is their first as far as the journal knows: at-least-once). The receive path calls
   * it within its budget and the in-flight limit, so a replay that owes millions of offsets keeps
   * them as ranges and brings them in flight no faster than new messages are read. Returns how
   * many it admitted.
   */
  admitOwed(max: number): number {
    let admitted = 0;
    while (admitted < max) {
      const start = this.owed.first;
      if (start === undefined) break;
      const end = Math.min(this.owed.contiguousEnd(start), start + (max - admitted));
      if (end <= start) break; // no offset there after all: never loop without progress
      for (let offset = start; offset < end; offset++) this.track(offset, DUE_NOW);
      this.owed.removeRange(start, end);
      admitted += end - start;
    }
    return admitted;
  }

  /**
   * Records deliveries (new or repeated) and moves `pullOffset` to `pullTo`: every offset passed
   * over that was not delivered (filtered out) is done. `readFrom` is where the read that found
   * them started: if the cursor is behind it (an earlier delivery entry never reached the
   * journal), the offsets in between are owed a delivery again, rather than taken as done.
   */
  deliver(deliveries: readonly Delivery[], pullTo: number, readFrom = this.pullOffset): void {
    this.coverLostDelivery(readFrom);
    for (const delivery of deliveries) {
      if (delivery.queueOffset < this.ackOffset || this.done.has(delivery.queueOffset)) continue;
      this.owed.delete(delivery.queueOffset);
      this.track(delivery.queueOffset, delivery);
    }
    if (pullTo > this.pullOffset) {
      let from = this.pullOffset;
      for (const delivery of deliveries) {
        const offset = delivery.queueOffset;
        if (offset < from) continue;
        this.done.addRange(from, offset);
        from = offset + 1;
      }
      this.done.addRange(from, pullTo);
      this.pullOffset = pullTo;
    }
    this.advanceAck();
  }

  /**
   * Marks in-flight offsets done (acked or dead-lettered). An offset at or past `pullOffset` was
   * handed out by a delivery whose entry never reached the journal (refused: a full disk, a full
   * append queue) while its ack did: it is done all the same (its ack was answered ok), and the
   * offsets before it are owed a delivery again, as deliver() does for such a gap.
   */
  complete(queueOffsets: readonly number[]): void {
    let end = this.pullOffset;
    for (const offset of queueOffsets) end = Math.max(end, offset + 1);
    this.coverLostDelivery(end);
    for (const offset of queueOffsets) {
      this.inflight.delete(offset);
      this.held.delete(offset);
      if (offset < this.ackOffset) continue;
      this.owed.delete(offset);
      this.done.add(offset);
    }
    this.advanceAck();
  }

  /** Whether (offset, attempt) is the current delivery of an in-flight message. */
  isCurrent(queueOffset: number, attempt: number): boolean {
    return this.inflight.get(queueOffset)?.attempt === attempt;
  }

  isDone(queueOffset: number): boolean {
    return queueOffset < this.ackOffset || this.done.has(queueOffset);
  }

  /** Sets when an in-flight message is visible and due again; `attempt`, when given, is its
   *  delivery count from now on (a delivery returned unseen does not count). */
  changeVisibility(
    queueOffset: number,
    nextVisibleMs: number,
    redeliverAtMs: number,
    attempt?: number,
  ): void {
    if (this.owed.has(queueOffset)) {
      // as if it had been admitted (attempt 0): an owed offset and an admitted one are one state
      this.owed.delete(queueOffset);
      this.track(queueOffset, { ...DUE_NOW, nextVisibleMs, redeliverAtMs });
      return;
    }
    const entry = this.inflight.get(queueOffset);
    if (entry === undefined) return;
    entry.nextVisibleMs = nextVisibleMs;
    entry.redeliverAtMs = redeliverAtMs;
    if (attempt !== undefined) entry.attempt = attempt;
    this.held.delete(queueOffset);
    this.pushDue(queueOffset, entry.attempt, redeliverAtMs);
  }

  /** Earliest time an in-flight message becomes due, or Infinity. In FIFO order only the lowest
   *  in-flight offset can come due first (dueInOrder stops there). */
  earliestDueMs(fifo = false): number {
    if (fifo) {
      let lowest: number | undefined;
      for (const offset of this.inflight.keys())
        if (lowest === undefined || offset < lowest) lowest = offset;
      // an owed offset below it goes first, once admitted (a receive does that when it has room)
      if (lowest === undefined || this.held.has(lowest) || lowest > (this.owed.first ?? Infinity))
        return Infinity;
      return (this.inflight.get(lowest) as Inflight).redeliverAtMs;
    }
    this.dropStale();
    return this.due.peekKey() ?? Infinity;
  }

  /** In-flight offsets whose redelivery time has come, oldest due first, at most `max`. Entries
   *  stay in flight; the caller redelivers (deliver) or dead-letters (complete) each. */
  takeDue(nowMs: number, max: number): number[] {
    const offsets = new Set<number>();
    while (offsets.size < max) {
      this.dropStale();
      const at = this.due.peekKey();
      if (at === undefined || at > nowMs) break;
      offsets.add((this.due.pop() as DueEntry).queueOffset);
    }
    return [...offsets];
  }

  /** FIFO order: in-flight offsets from the lowest up, while each is due (stops at the first one
   *  that is not, or at an owed offset not admitted yet, so nothing is handed out ahead of an
   *  earlier unacked message). */
  dueInOrder(nowMs: number, max: number): number[] {
    const offsets = [...this.inflight.keys()].sort((a, b) => a - b);
    const firstOwed = this.owed.first ?? Infinity;
    const due: number[] = [];
    for (const offset of offsets) {
      if (due.length >= max || this.held.has(offset) || offset > firstOwed) break;
      if ((this.inflight.get(offset) as Inflight).redeliverAtMs > nowMs) break;
      due.push(offset);
    }
    return due;
  }

  /** Keeps an in-flight offset from coming due (while it is being dead-lettered). */
  hold(queueOffset: number): void {
    if (this.inflight.has(queueOffset)) this.held.add(queueOffset);
  }

  isHeld(queueOffset: number): boolean {
    return this.held.has(queueOffset);
  }

  /** Offsets in [ackOffset, pullOffset) that are done (acked above the committed offset). */
  get doneAboveAck(): number {
    return this.done.size;
  }

  /** Done offsets at or past `offset`: those above a retention minimum the cursor has not
   *  skipped to yet (it skips on its next read, or at the next start). */
  doneFrom(offset: number): number {
    if (offset <= this.ackOffset) return this.done.size;
    let count = 0;
    for (const [start, end] of this.done.pairs())
      if (end > offset) count += end - Math.max(start, offset);
    return count;
  }

  /** The first offset at or past `offset` that is not done: where the group's backlog starts
   *  once retention deleted the queue below `offset`. */
  firstNotDoneFrom(offset: number): number {
    if (offset <= this.ackOffset) return this.ackOffset;
    return this.done.contiguousEnd(offset);
  }

  /** In-flight offsets at or past `offset` (those below it were deleted by retention). */
  inflightFrom(offset: number): number {
    if (offset <= this.ackOffset) return this.inflight.size;
    let count = 0;
    for (const queueOffset of this.inflight.keys()) if (queueOffset >= offset) count++;
    return count;
  }

  /** Moves the cursor: everything below `offset` done, nothing in flight. */
  reset(offset: number): void {
    this.inflight.clear();
    this.done.clear();
    this.owed.clear();
    this.due.clear();
    this.held.clear();
    this.ackOffset = offset;
    this.pullOffset = offset;
    this.epoch++;
    this.resets++;
  }

  /** The queue lost entries below `minOffset` (retention): skip them. */
  skipExpired(minOffset: number): void {
    if (this.ackOffset >= minOffset) return;
    for (const offset of this.inflight.keys()) if (offset < minOffset) this.inflight.delete(offset);
    this.ackOffset = minOffset;
    if (this.pullOffset < minOffset) this.pullOffset = minOffset;
    this.done.dropBelow(minOffset);
    this.owed.dropBelow(minOffset);
    this.advanceAck();
    this.epoch++;
  }

  /** The queue is shorter than the cursor thinks (its log tail was lost in a crash under the
   *  async flush policy): never skip what will be written there next. True when it moved. */
  clampTo(maxOffset: number): boolean {
    if (this.pullOffset <= maxOffset) return false;
    for (const offset of this.inflight.keys())
      if (offset >= maxOffset) this.inflight.delete(offset);
    this.pullOffset = maxOffset;
    if (this.ackOffset > maxOffset) this.ackOffset = maxOffset;
    const kept = this.done.pairs().filter(([start]) => start < maxOffset);
    this.done.clear();
    for (const [start, end] of kept) this.done.addRange(start, Math.min(end, maxOffset));
    this.owed.dropFrom(maxOffset);
    this.epoch++;
    // as a reset: messages stored from now on take the lost offsets again, and a handle of a lost
    // delivery must not name the new message's delivery of the same offset and attempt
    this.resets++;
    return true;
  }

  /** Moves `pullOffset` up to `to` over offsets a delivery whose entry never reached the journal
   *  handed out: they are owed a delivery again (at-least-once), as one range whatever its length
   *  (nothing at or past `pullOffset` is in flight or done). */
  private coverLostDelivery(to: number): void {
    if (to <= this.pullOffset) return;
    this.owed.addRange(this.pullOffset, to);
    this.pullOffset = to;
  }

  private track(queueOffset: number, entry: Inflight): void {
    this.inflight.set(queueOffset, {
      attempt: entry.attempt,
      firstDeliveryMs: entry.firstDeliveryMs,
      nextVisibleMs: entry.nextVisibleMs,
      redeliverAtMs: entry.redeliverAtMs,
    });
    this.pushDue(queueOffset, entry.attempt, entry.redeliverAtMs);
  }

  /** Entries of acked or re-timed deliveries leave the heap only when they reach its top, which
   *  one old delivery still in flight can put off for hours: past twice the live entries the heap
   *  is rebuilt from what is in flight, so its memory follows the in-flight bound, not the rate. */
  private pushDue(queueOffset: number, attempt: number, redeliverAtMs: number): void {
    this.due.push(redeliverAtMs, { queueOffset, attempt, redeliverAtMs });
    if (this.due.size <= 2 * this.inflight.size + COMPACT_SLACK) return;
    this.due.clear();
    for (const [offset, entry] of this.inflight) {
      if (this.held.has(offset)) continue; // not due while held; a release pushes it again
      this.due.push(entry.redeliverAtMs, {
        queueOffset: offset,
        attempt: entry.attempt,
        redeliverAtMs: entry.redeliverAtMs,
      });
    }
  }

  /** Pops heap entries that no longer describe a current, unheld delivery. */
  private dropStale(): void {
    for (;;) {
      const top = this.due.peek();
      if (top === undefined) return;
      const entry = this.inflight.get(top.queueOffset);
      if (
        entry !== undefined &&
        entry.attempt === top.attempt &&
        entry.redeliverAtMs === top.redeliverAtMs &&
        !this.held.has(top.queueOffset)
      ) {
        return;
      }
      this.due.pop();
    }
  }

  private advanceAck(): void {
    const end = this.done.contiguousEnd(this.ackOffset);
    if (end !== this.ackOffset) {
      this.ackOffset = end;
      this.done.dropBelow(end);
    }
  }
}
