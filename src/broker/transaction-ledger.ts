// The durable side of transactions: per half queue (half topic, queue id), which half messages
// were committed, rolled back, and which commits were dispatched to their topic, and how often
// each undecided one was offered for check-back. State changes only through `apply(entry)` with
// `txn-*` entries journaled by LedgerJournal beside the consumer ledger's, and snapshots carry it,
// so replay rebuilds exactly this state. A half message is undecided when neither set holds its
// queue offset: decisions are final (one set, never both) and memory follows the gaps between
// runs of decided offsets, not the number of messages.
import { OffsetRanges } from './offset-ranges.js';

export type TxnEntry =
  | { op: 'txn-commit'; half: string; queue: number; offset: number }
  | { op: 'txn-rollback'; half: string; queue: number; offset: number }
  /** The committed copies of these half messages are in their target queue. */
  | { op: 'txn-dispatched'; half: string; queue: number; offsets: number[] }
  /** These undecided half messages were offered for check-back at `at`. */
  | { op: 'txn-check'; half: string; queue: number; offsets: number[]; at: number }
  /** The topic (or its instance) was deleted: its half queues are forgotten. */
  | { op: 'txn-drop'; half: string };

export type TxnDecision = 'COMMITTED' | 'ROLLED_BACK' | 'UNDECIDED';

/** [queueOffset, checks, lastCheckMs] */
export type CheckTuple = [number, number, number];

export interface TxnQueueSnapshot {
  h: string;
  q: number;
  c: [number, number][];
  r: [number, number][];
  d: [number, number][];
  k: CheckTuple[];
}

export interface TxnSnapshot {
  v: 1;
  queues: TxnQueueSnapshot[];
}

export function isTxnEntry(entry: { op: string }): entry is TxnEntry {
  return entry.op.startsWith('txn-');
}

class HalfQueueState {
  readonly committed = new OffsetRanges();
  readonly rolledBack = new OffsetRanges();
  readonly dispatched = new OffsetRanges();
  /** Undecided offsets offered at least once: [checks, lastCheckMs]. */
  readonly checks = new Map<number, [number, number]>();
}

function queueKey(half: string, queue: number): string {
  return `${half}\u0000${queue}`;
}

/** The half topic and queue id a queueKey names. */
function parseQueueKey(key: string): [half: string, queue: number] {
  const [half = '', queue = '0'] = key.split('\u0000');
  return [half, Number(queue)];
}

export class TransactionLedger {
  private readonly queues = new Map<string, HalfQueueState>();

  decision(half: string, queue: number, offset: number): TxnDecision {
    const state = this.queues.get(queueKey(half, queue));
    if (state?.committed.has(offset) === true) return 'COMMITTED';
    if (state?.rolledBack.has(offset) === true) return 'ROLLED_BACK';
    return 'UNDECIDED';
  }

  isDispatched(half: string, queue: number, offset: number): boolean {
    return this.queues.get(queueKey(half, queue))?.dispatched.has(offset) === true;
  }

  /** [checks, lastCheckMs] of an undecided half message ([0, 0] when never offered). */
  checksOf(half: string, queue: number, offset: number): [number, number] {
    return this.queues.get(queueKey(half, queue))?.checks.get(offset) ?? [0, 0];
  }

  /** The first offset at or above `from` that is undecided. */
  undecidedFloor(half: string, queue: number, from: number): number {
    const state = this.queues.get(queueKey(half, queue));
    if (state === undefined) return from;
    let at = from;
    for (;;) {
      const next = state.rolledBack.contiguousEnd(state.committed.contiguousEnd(at));
      if (next === at) return at;
      at = next;
    }
  }

  /** Committed offsets whose copy is not recorded as dispatched (a crash between the two). */
  undispatched(): { half: string; queue: number; offset: number }[] {
    const found: { half: string; queue: number; offset: number }[] = [];
    for (const [key, state] of this.queues) {
      const [half, queue] = parseQueueKey(key);
      for (const [start, end] of state.committed.pairs()) {
        let at = start;
        while (at < end) {
          const skip = state.dispatched.contiguousEnd(at);
          if (skip > at) {
            at = skip;
            continue;
          }
          found.push({ half, queue, offset: at });
          at++;
        }
      }
    }
    return found;
  }

  /** Forgets decisions below the queue's first readable entry (retention deleted them). */
  trimBelow(half: string, queue: number, minQueueOffset: number): void {
    const state = this.queues.get(queueKey(half, queue));
    if (state === undefined) return;
    state.committed.dropBelow(minQueueOffset);
    state.rolledBack.dropBelow(minQueueOffset);
    state.dispatched.dropBelow(minQueueOffset);
    for (const offset of state.checks.keys())
      if (offset < minQueueOffset) state.checks.delete(offset);
  }

  /** The half queues holding any state. */
  queueList(): [half: string, queue: number][] {
    return [...this.queues.keys()].map(parseQueueKey);
  }

  /**
   * Forgets everything at or above the queue's end (its log lost a tail: a torn write after
   * damage, an async flush cut by a power loss). Half messages published after the restart take
   * those offsets again, and would otherwise inherit the lost ones' decisions: a new transaction
   * answered 409 "already rolled back". True when something was forgotten.
   */
  trimFrom(half: string, queue: number, maxQueueOffset: number): boolean {
    const state = this.queues.get(queueKey(half, queue));
    if (state === undefined) return false;
    let trimmed = false;
    for (const set of [state.committed, state.rolledBack, state.dispatched]) {
      const pairs = set.pairs();
      if (pairs.length > 0 && pairs[pairs.length - 1][1] > maxQueueOffset) {
        set.dropFrom(maxQueueOffset);
        trimmed = true;
      }
    }
    for (const offset of state.checks.keys()) {
      if (offset >= maxQueueOffset) {
        state.checks.delete(offset);
        trimmed = true;
      }
    }
    return trimmed;
  }

  apply(entry: TxnEntry): void {
    if (entry.op === 'txn-drop') {
      for (const key of [...this.queues.keys()])
        if (key.startsWith(`${entry.half}\u0000`)) this.queues.delete(key);
      return;
    }
    const state = this.state(entry.half, entry.queue);
    switch (entry.op) {
      case 'txn-commit':
      case 'txn-rollback':
        // the first decision stands: a later contrary entry changes nothing
        if (state.committed.has(entry.offset) || state.rolledBack.has(entry.offset)) return;
        (entry.op === 'txn-commit' ? state.committed : state.rolledBack).add(entry.offset);
        state.checks.delete(entry.offset);
        return;
      case 'txn-dispatched':
        for (const offset of entry.offsets) state.dispatched.add(offset);
        return;
      case 'txn-check':
        for (const offset of entry.offsets) {
          if (state.committed.has(offset) || state.rolledBack.has(offset)) continue;
          const [checks] = state.checks.get(offset) ?? [0, 0];
          state.checks.set(offset, [checks + 1, entry.at]);
        }
        return;
    }
  }

  snapshot(): TxnSnapshot {
    return {
      v: 1,
      queues: [...this.queues].map(([key, state]) => {
        const [half, queue] = parseQueueKey(key);
        return {
          h: half,
          q: queue,
          c: state.committed.pairs(),
          r: state.rolledBack.pairs(),
          d: state.dispatched.pairs(),
          k: [...state.checks].map(([offset, [checks, at]]): CheckTuple => [offset, checks, at]),
        };
      }),
    };
  }

  restore(snapshot: TxnSnapshot): void {
    for (const queue of snapshot.queues) {
      const state = this.state(queue.h, queue.q);
      for (const [start, end] of queue.c) state.committed.addRange(start, end);
      for (const [start, end] of queue.r) state.rolledBack.addRange(start, end);
      for (const [start, end] of queue.d) state.dispatched.addRange(start, end);
      for (const [offset, checks, at] of queue.k) state.checks.set(offset, [checks, at]);
    }
  }

  private state(half: string, queue: number): HalfQueueState {
    const key = queueKey(half, queue);
    let state = this.queues.get(key);
    if (state === undefined) {
      state = new HalfQueueState();
      this.queues.set(key, state);
    }
    return state;
  }
}
