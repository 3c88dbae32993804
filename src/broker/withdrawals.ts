// Withdrawn messages: stored here by a publish whose answer never reached the cluster gateway,
// which then stored the same messages on another broker (publish fences, publish-fences.ts). A
// withdrawn message is never delivered from here: a receive passes over it as over a message
// its tag filter leaves out. State changes only through `apply(entry)` with `withdraw` entries
// journaled by LedgerJournal, and snapshots carry it, so replay rebuilds exactly this state.
// Memory follows runs of withdrawn offsets per queue (one call's messages are mostly adjacent).
import { OffsetRanges } from './offset-ranges.js';

export type WithdrawEntry =
  | { op: 'withdraw'; topic: string; queue: number; offsets: number[] }
  /** The store topic (or its instance) was deleted: its withdrawals are forgotten. */
  | { op: 'withdraw-drop'; topic: string };

export interface WithdrawnQueueSnapshot {
  t: string;
  q: number;
  o: [number, number][];
}

export interface WithdrawnSnapshot {
  v: 1;
  queues: WithdrawnQueueSnapshot[];
}

export function isWithdrawEntry(entry: { op: string }): entry is WithdrawEntry {
  return entry.op === 'withdraw' || entry.op === 'withdraw-drop';
}

function queueKey(topic: string, queue: number): string {
  return `${topic}\u0000${queue}`;
}

export class Withdrawals {
  private readonly queues = new Map<string, OffsetRanges>();

  /** Withdrawn offsets of one store queue, or undefined when it has none (the common case). */
  of(topic: string, queue: number): OffsetRanges | undefined {
    if (this.queues.size === 0) return undefined;
    return this.queues.get(queueKey(topic, queue));
  }

  has(topic: string, queue: number, offset: number): boolean {
    return this.of(topic, queue)?.has(offset) === true;
  }

  /** Forgets offsets below the queue's first readable entry (retention deleted them) and from
   *  its end up (a log tail lost under the async flush policy: messages stored from now on take
   *  those offsets, and must not be taken for withdrawn). True when it forgot any of the latter. */
  trimTo(topic: string, queue: number, minQueueOffset: number, maxQueueOffset: number): boolean {
    const key = queueKey(topic, queue);
    const ranges = this.queues.get(key);
    if (ranges === undefined) return false;
    ranges.dropBelow(minQueueOffset);
    const size = ranges.size;
    ranges.dropFrom(maxQueueOffset);
    const lostTail = ranges.size < size;
    if (ranges.rangeCount === 0) this.queues.delete(key);
    return lostTail;
  }

  /** Whether any queue of a store topic has withdrawn offsets. */
  hasTopic(topic: string): boolean {
    for (const key of this.queues.keys()) if (key.startsWith(`${topic}\u0000`)) return true;
    return false;
  }

  /** Every store queue with withdrawn offsets, as [topic, queue]. */
  queueList(): [string, number][] {
    return [...this.queues.keys()].map((key) => {
      const [topic = '', queue = '0'] = key.split('\u0000');
      return [topic, Number(queue)];
    });
  }

  apply(entry: WithdrawEntry): void {
    if (entry.op === 'withdraw-drop') {
      for (const key of [...this.queues.keys()])
        if (key.startsWith(`${entry.topic}\u0000`)) this.queues.delete(key);
      return;
    }
    if (entry.offsets.length === 0) return;
    const key = queueKey(entry.topic, entry.queue);
    let ranges = this.queues.get(key);
    if (ranges === undefined) {
      ranges = new OffsetRanges();
      this.queues.set(key, ranges);
    }
    for (const offset of entry.offsets) ranges.add(offset);
  }

  snapshot(): WithdrawnSnapshot {
    return {
      v: 1,
      queues: [...this.queues].map(([key, ranges]) => {
        const [topic = '', queue = '0'] = key.split('\u0000');
        return { t: topic, q: Number(queue), o: ranges.pairs() };
      }),
    };
  }

  restore(snapshot: WithdrawnSnapshot): void {
    for (const queue of snapshot.queues) {
      const ranges = OffsetRanges.fromPairs(queue.o);
      if (ranges.rangeCount > 0) this.queues.set(queueKey(queue.t, queue.q), ranges);
    }
  }
}
