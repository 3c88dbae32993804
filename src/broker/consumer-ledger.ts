// Every consumer's progress on the broker: one Subscription per (group, topic, consumer slot),
// one QueueCursor per queue in it, broadcasting consumers' slots, and which dead letters were
// re-sent (and which are being re-sent: journaled before their copies are made). State changes only through `apply(entry)`, and the broker journals each entry it
// applies, so replaying the journal after the latest snapshot rebuilds exactly this state.
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';
import { WharfError } from '../errors.js';
import { groupKey as groupKeyOf, storeTopic } from './names.js';
import { OffsetRanges } from './offset-ranges.js';
import { QueueCursor, type CursorSnapshot, type Delivery } from './queue-cursor.js';

/** [queueOffset, attempt, firstDeliveryMs, nextVisibleMs, redeliverAtMs] */
export type DeliveryTuple = [number, number, number, number, number];

export type LedgerEntry =
  | { op: 'start'; sub: string; queue: number; offset: number }
  /** `from`: where the read started (see QueueCursor.deliver). */
  | { op: 'deliver'; sub: string; queue: number; d: DeliveryTuple[]; pull: number; from: number }
  | { op: 'complete'; sub: string; queue: number; offsets: number[] }
  | {
      op: 'vis';
      sub: string;
      queue: number;
      offset: number;
      nextVisibleMs: number;
      redeliverAtMs: number;
      /** The delivery count from now on, when the change sets it: a delivery returned unseen
       *  does not count (Receiver.returnDeliveries). */
      attempt?: number;
    }
  | { op: 'reset'; sub: string; queue: number; offset: number }
  /** The queue ends at `offset`, below the cursor (QueueCursor.clampTo): found by a read. */
  | { op: 'clamp'; sub: string; queue: number; offset: number }
  | { op: 'slot'; group: string; consumerId: string; slot: number }
  | { op: 'dlqDone'; group: string; offsets: number[] }
  /** These dead letters (DLQ queue offsets) are being re-sent: journaled before their copies
   *  are made, so a crash before their dlqDone is finished at start, not left to a second
   *  re-send that would copy them again. */
  | { op: 'dlqResend'; group: string; offsets: number[] }
  /** The descriptors a (group, topic) pair was last used with: the sweep needs them after a
   *  restart, before anyone calls again. */
  | { op: 'conf'; topic: TopicDescriptor; group: GroupDescriptor }
  | { op: 'dropGroup'; group: string }
  | { op: 'dropTopic'; topic: string };

export class Subscription {
  readonly cursors = new Map<number, QueueCursor>();
  /** Where the next receive starts its round over the queues (fairness). */
  rotation = 0;
  /** Deliveries with attempt > 1 (redeliveries). */
  retries = 0;
  /** When a receive last looked (not journaled: after a restart the sweep takes over at once). */
  lastReceiveMs = 0;
  /** The tags the last receive took (null: every tag; undefined: no receive since the start, not
   *  journaled): what query by id tells a message the group passed over by (FILTERED) from one
   *  it acked. */
  lastTags: ReadonlySet<string> | null | undefined = undefined;
  /** Queues with a receive reading them now: a second receive skips them (no double delivery). */
  readonly busy = new Map<number, Promise<void>>();

  constructor(
    readonly key: string,
    readonly groupKey: string,
    readonly topic: string,
    readonly consumerSlot: number,
  ) {}

  inflightCount(): number {
    let count = 0;
    for (const cursor of this.cursors.values()) count += cursor.inflightCount;
    return count;
  }

  earliestDueMs(fifo = false): number {
    let earliest = Infinity;
    for (const cursor of this.cursors.values())
      earliest = Math.min(earliest, cursor.earliestDueMs(fifo));
    return earliest;
  }
}

export interface LedgerSnapshot {
  /** 2 when a cursor holds owed offsets (an older broker, which would drop them, refuses it),
   *  else 1: the same shape either way. */
  v: 1 | 2;
  subs: { g: string; t: string; s: number; retries: number; q: [number, CursorSnapshot][] }[];
  slots: [string, [string, number][]][];
  dlq: [string, [number, number][]][];
  /** Dead letters being re-sent (absent when none, and in snapshots written before it). */
  dlqResending?: [string, number[]][];
  confs?: { topic: TopicDescriptor; group: GroupDescriptor }[];
}

/** Same settings: the gateway usually passes the very object it cached, else compare fields. */
function sameDescriptor<T extends object>(a: T, b: T): boolean {
  if (a === b) return true;
  const keys = Object.keys(a) as (keyof T)[];
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) =>
    typeof a[key] === 'object'
      ? JSON.stringify(a[key]) === JSON.stringify(b[key])
      : a[key] === b[key],
  );
}

function configKey(groupKey: string, topic: string): string {
  return `${groupKey}\u0000${topic}`;
}

export function subscriptionKey(groupKey: string, topic: string, consumerSlot: number): string {
  return `${groupKey}\u0000${topic}\u0000${consumerSlot}`;
}

function parseSubscriptionKey(key: string): [string, string, number] {
  const [groupKey, topic, slot] = key.split('\u0000');
  if (groupKey === undefined || topic === undefined || slot === undefined) {
    throw new WharfError('CorruptIndex', `bad subscription key in journal: ${JSON.stringify(key)}`);
  }
  return [groupKey, topic, Number(slot)];
}

export class ConsumerLedger {
  private readonly subs = new Map<string, Subscription>();
  private readonly slots = new Map<string, Map<string, number>>();
  private readonly deadLettersDone = new Map<string, OffsetRanges>();
  private readonly deadLettersResending = new Map<string, Set<number>>();
  private readonly configs = new Map<string, { topic: TopicDescriptor; group: GroupDescriptor }>();
  /** The same by store topic (topic stats name a topic's consuming groups without a walk). */
  private readonly configsByTopic = new Map<
    string,
    Map<string, { topic: TopicDescriptor; group: GroupDescriptor }>
  >();

  constructor(readonly maxConsumersPerGroup = 1000) {}

  /** The subscription, when it exists. */
  find(groupKey: string, topic: string, consumerSlot: number): Subscription | undefined {
    return this.subs.get(subscriptionKey(groupKey, topic, consumerSlot));
  }

  /** The subscription, created empty when missing (creation itself needs no journal entry:
   *  an empty subscription is rebuilt by the first entry that names it). */
  subscription(groupKey: string, topic: string, consumerSlot: number): Subscription {
    const key = subscriptionKey(groupKey, topic, consumerSlot);
    let sub = this.subs.get(key);
    if (sub === undefined) {
      sub = new Subscription(key, groupKey, topic, consumerSlot);
      this.subs.set(key, sub);
    }
    return sub;
  }

  /** Whether the subscription is still the ledger's (not dropped by dropTopic / dropGroup). */
  isLive(sub: Subscription): boolean {
    return this.subs.get(sub.key) === sub;
  }

  hasSubscription(key: string): boolean {
    return this.subs.has(key);
  }

  /** Subscriptions reading a topic (every group, every consumer). */
  subscriptionsOf(topic: string): Subscription[] {
    return [...this.subs.values()].filter((sub) => sub.topic === topic);
  }

  /** Subscriptions of a group on a topic (one for clustering, one per consumer for broadcasting). */
  subscriptionsOfGroup(groupKey: string, topic: string): Subscription[] {
    return [...this.subs.values()].filter(
      (sub) => sub.groupKey === groupKey && sub.topic === topic,
    );
  }

  allSubscriptions(): IterableIterator<Subscription> {
    return this.subs.values();
  }

  /** The group keys and store topics the ledger holds anything of under `prefix` (an
   *  instance's `tenant/instance/`): what dropping the instance drops (dropGroup, dropTopic). */
  namesUnder(prefix: string): { groups: string[]; topics: string[] } {
    const groups = new Set<string>();
    const topics = new Set<string>();
    for (const sub of this.subs.values()) {
      groups.add(sub.groupKey);
      topics.add(sub.topic);
    }
    for (const conf of this.configs.values()) {
      groups.add(groupKeyOf(conf.group));
      topics.add(storeTopic(conf.topic));
    }
    for (const group of this.slots.keys()) groups.add(group);
    for (const group of this.deadLettersDone.keys()) groups.add(group);
    for (const group of this.deadLettersResending.keys()) groups.add(group);
    const under = (name: string): boolean => name.startsWith(prefix);
    return { groups: [...groups].filter(under), topics: [...topics].filter(under) };
  }

  /** Every (topic, group) pair with its latest descriptors. */
  configurations(): IterableIterator<{ topic: TopicDescriptor; group: GroupDescriptor }> {
    return this.configs.values();
  }

  /** The configurations of the groups that have received from a store topic. */
  configurationsOf(
    topic: string,
  ): IterableIterator<{ topic: TopicDescriptor; group: GroupDescriptor }> {
    return (this.configsByTopic.get(topic) ?? new Map()).values();
  }

  private forgetConfig(key: string, topic: TopicDescriptor): void {
    this.configs.delete(key);
    const name = storeTopic(topic);
    const ofTopic = this.configsByTopic.get(name);
    ofTopic?.delete(key);
    if (ofTopic?.size === 0) this.configsByTopic.delete(name);
  }

  /** Whether `sub` is a broadcasting group's base (slot 0: where a consumer seen for the first
   *  time starts, set by a reset), not a consumer's. */
  isBroadcastingBase(sub: Subscription): boolean {
    if (sub.consumerSlot !== 0) return false;
    const conf = this.configs.get(configKey(sub.groupKey, sub.topic));
    return conf?.group.deliveryMode === 'BROADCASTING';
  }

  /** The entry recording new or changed descriptors of a pair, or null when known as they are. */
  configEntry(topic: TopicDescriptor, group: GroupDescriptor): LedgerEntry | null {
    const known = this.configs.get(configKey(groupKeyOf(group), storeTopic(topic)));
    if (
      known !== undefined &&
      sameDescriptor(known.topic, topic) &&
      sameDescriptor(known.group, group)
    ) {
      return null;
    }
    return { op: 'conf', topic, group };
  }

  /** A broadcasting consumer's slot, or the entry that assigns a new one (apply and journal it). */
  slotOf(groupKey: string, consumerId: string): number | LedgerEntry {
    const slots = this.slots.get(groupKey);
    const slot = slots?.get(consumerId);
    if (slot !== undefined) return slot;
    const count = slots?.size ?? 0;
    if (count >= this.maxConsumersPerGroup) {
      throw new WharfError(
        'QuotaExceeded',
        `a broadcasting group holds at most ${this.maxConsumersPerGroup} consumers`,
      );
    }
    return { op: 'slot', group: groupKey, consumerId, slot: count + 1 };
  }

  consumerIdOfSlot(groupKey: string, slot: number): string | undefined {
    for (const [consumerId, s] of this.slots.get(groupKey) ?? []) if (s === slot) return consumerId;
    return undefined;
  }

  deadLetterDone(groupKey: string): OffsetRanges {
    let done = this.deadLettersDone.get(groupKey);
    if (done === undefined) {
      done = new OffsetRanges();
      this.deadLettersDone.set(groupKey, done);
    }
    return done;
  }

  /** Forgets re-sent dead letters below their queue's first readable entry (retention deleted
   *  them: nothing lists or counts them any more), so the record is bounded by the dead-letter
   *  queue, not by every re-send since the group was made; and, with `maxQueueOffset`, those at
   *  or past its end (a log tail lost under the async flush policy: the next dead letters take
   *  those offsets and must not be taken for re-sent). `offsetsOf`: a group key's queue bounds.
   *  True when it forgot any past the end. */
  trimDeadLettersDone(
    offsetsOf: (groupKey: string) => { minQueueOffset: number; maxQueueOffset?: number },
  ): boolean {
    let lostTail = false;
    // a group may be re-sending with no done ranges (its first re-send, or all trimmed away)
    const groups = new Set([...this.deadLettersDone.keys(), ...this.deadLettersResending.keys()]);
    for (const group of groups) {
      const done = this.deadLetterDone(group);
      const { minQueueOffset, maxQueueOffset } = offsetsOf(group);
      done.dropBelow(minQueueOffset);
      if (maxQueueOffset !== undefined) {
        const size = done.size;
        done.dropFrom(maxQueueOffset);
        if (done.size < size) lostTail = true;
        const resending = this.deadLettersResending.get(group);
        for (const offset of [...(resending ?? [])])
          if (offset >= maxQueueOffset && resending?.delete(offset) === true) lostTail = true;
        if (resending?.size === 0) this.deadLettersResending.delete(group);
      }
      if (done.rangeCount === 0) this.deadLettersDone.delete(group);
    }
    return lostTail;
  }

  /** Dead letters of the group journaled as being re-sent and not done yet. */
  deadLettersBeingResent(groupKey: string): ReadonlySet<number> {
    return this.deadLettersResending.get(groupKey) ?? new Set();
  }

  /** Groups with dead letters journaled as being re-sent and not done yet. */
  groupsResendingDeadLetters(): string[] {
    return [...this.deadLettersResending.keys()];
  }

  apply(entry: LedgerEntry): void {
    switch (entry.op) {
      case 'start': {
        const sub = this.subscriptionFromKey(entry.sub);
        if (!sub.cursors.has(entry.queue))
          sub.cursors.set(entry.queue, new QueueCursor(entry.offset));
        return;
      }
      case 'deliver': {
        const cursor = this.cursor(entry.sub, entry.queue);
        if (cursor === undefined) return;
        const deliveries: Delivery[] = entry.d.map(
          ([queueOffset, attempt, firstDeliveryMs, nextVisibleMs, redeliverAtMs]) => ({
            queueOffset,
            attempt,
            firstDeliveryMs,
            nextVisibleMs,
            redeliverAtMs,
          }),
        );
        cursor.deliver(deliveries, entry.pull, entry.from);
        const sub = this.subs.get(entry.sub) as Subscription;
        for (const delivery of deliveries) if (delivery.attempt > 1) sub.retries++;
        return;
      }
      case 'complete':
        this.cursor(entry.sub, entry.queue)?.complete(entry.offsets);
        return;
      case 'vis':
        this.cursor(entry.sub, entry.queue)?.changeVisibility(
          entry.offset,
          entry.nextVisibleMs,
          entry.redeliverAtMs,
          entry.attempt,
        );
        return;
      case 'reset': {
        const sub = this.subscriptionFromKey(entry.sub);
        const cursor = sub.cursors.get(entry.queue);
        if (cursor === undefined) sub.cursors.set(entry.queue, new QueueCursor(entry.offset));
        else cursor.reset(entry.offset);
        return;
      }
      case 'clamp':
        this.cursor(entry.sub, entry.queue)?.clampTo(entry.offset);
        return;
      case 'slot': {
        let slots = this.slots.get(entry.group);
        if (slots === undefined) {
          slots = new Map();
          this.slots.set(entry.group, slots);
        }
        slots.set(entry.consumerId, entry.slot);
        return;
      }
      case 'dlqDone': {
        for (const offset of entry.offsets) this.deadLetterDone(entry.group).add(offset);
        const resending = this.deadLettersResending.get(entry.group);
        if (resending === undefined) return;
        for (const offset of entry.offsets) resending.delete(offset);
        if (resending.size === 0) this.deadLettersResending.delete(entry.group);
        return;
      }
      case 'dlqResend': {
        let resending = this.deadLettersResending.get(entry.group);
        if (resending === undefined) {
          resending = new Set();
          this.deadLettersResending.set(entry.group, resending);
        }
        for (const offset of entry.offsets)
          if (!this.deadLetterDone(entry.group).has(offset)) resending.add(offset);
        return;
      }
      case 'conf': {
        const topic = storeTopic(entry.topic);
        const conf = { topic: entry.topic, group: entry.group };
        const key = configKey(groupKeyOf(entry.group), topic);
        this.configs.set(key, conf);
        let ofTopic = this.configsByTopic.get(topic);
        if (ofTopic === undefined) {
          ofTopic = new Map<string, { topic: TopicDescriptor; group: GroupDescriptor }>();
          this.configsByTopic.set(topic, ofTopic);
        }
        ofTopic.set(key, conf);
        return;
      }
      case 'dropGroup':
        for (const [key, conf] of this.configs)
          if (groupKeyOf(conf.group) === entry.group) this.forgetConfig(key, conf.topic);
        for (const [key, sub] of this.subs) if (sub.groupKey === entry.group) this.subs.delete(key);
        this.slots.delete(entry.group);
        this.deadLettersDone.delete(entry.group);
        this.deadLettersResending.delete(entry.group);
        return;
      case 'dropTopic':
        for (const key of [...(this.configsByTopic.get(entry.topic)?.keys() ?? [])])
          this.configs.delete(key);
        this.configsByTopic.delete(entry.topic);
        for (const [key, sub] of this.subs) if (sub.topic === entry.topic) this.subs.delete(key);
        return;
    }
  }

  snapshot(): LedgerSnapshot {
    const subs = [...this.subs.values()].map((sub) => ({
      g: sub.groupKey,
      t: sub.topic,
      s: sub.consumerSlot,
      retries: sub.retries,
      q: [...sub.cursors].map(
        ([queue, cursor]) => [queue, cursor.snapshot()] as [number, CursorSnapshot],
      ),
    }));
    const owes = subs.some((sub) => sub.q.some(([, cursor]) => cursor.owed !== undefined));
    return {
      v: owes ? 2 : 1,
      subs,
      slots: [...this.slots].map(([group, slots]) => [group, [...slots]]),
      dlq: [...this.deadLettersDone].map(([group, done]) => [group, done.pairs()]),
      ...(this.deadLettersResending.size > 0
        ? {
            dlqResending: [...this.deadLettersResending].map(
              ([group, offsets]): [string, number[]] => [group, [...offsets]],
            ),
          }
        : {}),
      confs: [...this.configs.values()],
    };
  }

  restore(shape: LedgerSnapshot): void {
    if (shape.v !== 1 && shape.v !== 2)
      throw new WharfError('UnsupportedFormat', `consumer snapshot version ${String(shape.v)}`);
    for (const entry of shape.subs) {
      const sub = this.subscription(entry.g, entry.t, entry.s);
      sub.retries = entry.retries;
      for (const [queue, cursor] of entry.q)
        sub.cursors.set(queue, QueueCursor.fromSnapshot(cursor));
    }
    for (const [group, slots] of shape.slots) this.slots.set(group, new Map(slots));
    for (const [group, pairs] of shape.dlq)
      this.deadLettersDone.set(group, OffsetRanges.fromPairs(pairs));
    for (const [group, offsets] of shape.dlqResending ?? [])
      this.deadLettersResending.set(group, new Set(offsets));
    for (const conf of shape.confs ?? []) this.apply({ op: 'conf', ...conf });
  }

  private subscriptionFromKey(key: string): Subscription {
    const existing = this.subs.get(key);
    if (existing !== undefined) return existing;
    const [groupKey, topic, slot] = parseSubscriptionKey(key);
    return this.subscription(groupKey, topic, slot);
  }

  /** The cursor an entry names; undefined when its subscription was dropped (an entry of work
   *  that finished after the drop must not bring it back). */
  private cursor(key: string, queue: number): QueueCursor | undefined {
    return this.subs.get(key)?.cursors.get(queue);
  }
}
