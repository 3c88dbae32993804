// Transactional messages: a publish on a TRANSACTION topic stores half messages in the topic's
// half topic (names.halfTopic, queue = the target queue), invisible to every group. A decision
// (commit, rollback, or the automatic rollback after the check limits) is a txn-* journal entry,
// applied only once durable, before it is answered (one the disk refused decided nothing); a
// commit then copies the half message to its target queue, keyed there by the half's log
// position (names.committedKey), and journals txn-dispatched — so a crash between decision and
// copy re-dispatches at start, and a crash between copy and txn-dispatched finds the copy by
// key: delivered once, never lost. Decisions on one half message are serialized; the first one
// stands (a contrary one is 409 Conflict). Undecided halves are offered to the producer by
// check() after the check delay, again with back-off, and rolled back after maxChecks offers or
// maxAgeMs. Start-up rebuilds the undecided set from the half topics and the journal alone:
// Redis holds nothing of transactions.
import type {
  CheckedMessage,
  TopicDescriptor,
  TransactionCheckRequest,
  TransactionDecisionOptions,
} from '../model/index.js';
import { WharfError } from '../errors.js';
import { MessageFlags, type StoredMessage } from '../store/index.js';
import type { BrokerCore } from './broker-core.js';
import { HalfMessages, type UndecidedHalf } from './half-messages.js';
import { userFields } from './message-view.js';
import {
  committedKey,
  halfTopic,
  messageScope,
  SystemProperty,
  targetOfHalfTopic,
  transactionScope,
} from './names.js';
import { tracePosition, type TracedEvent } from './trace-log.js';
import type { TxnEntry } from './transaction-ledger.js';

export interface TransactionOptions {
  /** An undecided half message is first offered for check-back this long after its publish;
   *  default 10 s. Offer n+1 comes checkDelayMs × 2^n after offer n, at most maxCheckIntervalMs. */
  checkDelayMs: number;
  /** Cap of the back-off between offers; default 5 min. */
  maxCheckIntervalMs: number;
  /** Offers before an unanswered half message is rolled back; default 15. */
  maxChecks: number;
  /** Age at which an undecided half message is rolled back; default 24 h. */
  maxAgeMs: number;
  /** How often the limits are enforced without a check call; default 1 s. */
  sweepIntervalMs: number;
}

export const DEFAULT_TRANSACTION_OPTIONS: TransactionOptions = {
  checkDelayMs: 10_000,
  maxCheckIntervalMs: 300_000,
  maxChecks: 15,
  maxAgeMs: 24 * 3600_000,
  sweepIntervalMs: 1000,
};

/** Why a half message was rolled back without a producer's answer (trace `reason`). */
export type AutoRollbackReason = 'CHECK_LIMIT' | 'AGE_LIMIT';

/** Rollbacks the sweep journals per tick at most (a storm drains over ticks, publishes go on). */
const SWEEP_BATCH = 1000;

/** The trace position of a half message: apart from its committed copy's (the copy has its own
 *  place in the target queue, where deliveries and acks are traced). */
export function halfTracePosition(userTopic: string, queueId: number, queueOffset: number): string {
  return tracePosition(`%HALF%/${userTopic}`, queueId, queueOffset);
}

/** The long-poll key parked checks of a half topic wait on. */
function checkPollKey(half: string): string {
  return `${half}\u0000check`;
}

/** tenant, instance and user topic of a half topic name. */
function partsOf(half: string): { tenantId: string; instanceId: string; topic: string } {
  const [tenantId = '', instanceId = '', , topic = ''] = half.split('/');
  return { tenantId, instanceId, topic };
}

export class Transactions {
  readonly options: TransactionOptions;
  private readonly halves = new HalfMessages();
  /** By half log offset: the decision (and dispatch) running on it. */
  private readonly locks = new Map<number, Promise<void>>();
  /** Commits whose copy failed (disk full, I/O): the sweep tries again, a repeated commit too. */
  private readonly failedDispatches = new Map<number, StoredMessage>();
  /** Log offsets of halves whose decision is being journaled: applied once durable, so the
   *  sweep's automatic rollback passes them over meanwhile. */
  private readonly deciding = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private parkedChecks = 0;
  /** Set once recover() has rebuilt the undecided set: the retention floor is known. */
  private recovered = false;

  constructor(
    private readonly core: BrokerCore,
    options: Partial<TransactionOptions> = {},
  ) {
    this.options = { ...DEFAULT_TRANSACTION_OPTIONS, ...options };
  }

  private get ledger() {
    return this.core.journal.transactions;
  }

  /** Undecided half messages held now (metrics, tests). */
  get undecidedCount(): number {
    return this.halves.size;
  }

  // ---- publish side ----

  /** Registers half messages just stored (Publisher). */
  added(
    half: string,
    stored: readonly {
      queueId: number;
      queueOffset: number;
      logOffset: number;
      storeTimestampMs: number;
    }[],
  ): void {
    // a parked check computed its wake-up before these: it looks again
    if (stored.length > 0) this.core.longPoll.notify(checkPollKey(half));
    for (const item of stored) {
      this.halves.add({
        half,
        ...item,
        checks: 0,
        dueMs: item.storeTimestampMs + this.options.checkDelayMs,
        removed: false,
      });
    }
  }

  /** The transaction id of each message id of a TRANSACTION topic (same position, own scope). */
  transactionIds(topic: TopicDescriptor, messageIds: readonly string[]): string[] {
    const positions = messageIds.map((id) => {
      const position = this.core.ids.decode(messageScope(topic), id);
      if (position === null) throw new WharfError('Internal', 'a stored half has no id');
      return position;
    });
    return this.core.ids.encode(transactionScope(topic), positions);
  }

  // ---- decisions ----

  async commit(
    topic: TopicDescriptor,
    transactionId: string,
    options: TransactionDecisionOptions = {},
  ): Promise<void> {
    const message = await this.locate(topic, transactionId);
    await this.serialized(message.logOffset, async () => {
      // the topic dropped while this waited its turn: its decisions are gone with it, and one
      // journaled now would stand for a half message of a topic created again at the offset
      this.core.dropped.checkTopic(topic);
      await this.decide(topic, message, 'COMMITTED', options);
      await this.dispatchOrRemember(message);
    });
  }

  async rollback(
    topic: TopicDescriptor,
    transactionId: string,
    options: TransactionDecisionOptions = {},
  ): Promise<void> {
    const message = await this.locate(topic, transactionId);
    await this.serialized(message.logOffset, () => {
      this.core.dropped.checkTopic(topic); // as a commit's
      return this.decide(topic, message, 'ROLLED_BACK', options);
    });
  }

  // ---- check-back ----

  /** Overdue undecided halves of the topic, each offered once now (long poll up to waitMs). */
  async check(
    topic: TopicDescriptor,
    request: TransactionCheckRequest,
    signal?: AbortSignal,
  ): Promise<CheckedMessage[]> {
    const half = halfTopic(topic);
    // on the monotonic clock: a wall clock stepped back must not stretch the wait (receiver.ts)
    const waitEnd = performance.now() + request.waitMs;
    const pollKey = checkPollKey(half);
    for (;;) {
      const version = this.core.longPoll.version(pollKey);
      const offered = await this.offer(
        topic,
        half,
        request.maxMessages,
        request.maxBodyBytes ?? Number.POSITIVE_INFINITY,
      );
      const waitMs = waitEnd - performance.now();
      if (offered.length > 0 || waitMs <= 0 || signal?.aborted === true) return offered;
      if (this.core.longPoll.closed) return offered;
      const wakeAtMs = Math.min(Date.now() + waitMs, this.halves.nextDueMs(half));
      // a subscription of its own: a notify wakes every parked check, each computes its wake-up
      const waiter = `check-${++this.parkedChecks}`;
      await this.core.longPoll.park(pollKey, topic.tenantId, wakeAtMs, version, signal, waiter);
      // cancelled while parked (answered by another broker, the client gone): no more offers,
      // which would count against their halves' check limits with nobody to see them
      if (isAborted(signal)) return [];
    }
  }

  // ---- lifecycle ----

  /** Rebuilds the undecided set from the half topics and the ledger, and dispatches commits a
   *  crash left undispatched. Once, at start, after the journal's recovery. */
  async recover(): Promise<void> {
    const store = this.core.store;
    const found: UndecidedHalf[] = [];
    for (const name of store.topics()) {
      if (targetOfHalfTopic(name) === null) continue;
      for (const queueId of store.queueIds(name)) {
        const { minQueueOffset, maxQueueOffset } = store.queueOffsets(name, queueId);
        this.ledger.trimBelow(name, queueId, minQueueOffset);
        let from = this.ledger.undecidedFloor(name, queueId, minQueueOffset);
        while (from < maxQueueOffset) {
          const result = await store.readQueue(name, queueId, from, { maxMessages: 256 });
          for (const message of result.messages) {
            if (this.ledger.decision(name, queueId, message.queueOffset) !== 'UNDECIDED') continue;
            const [checks, lastCheckMs] = this.ledger.checksOf(name, queueId, message.queueOffset);
            found.push({
              half: name,
              queueId,
              queueOffset: message.queueOffset,
              logOffset: message.logOffset,
              storeTimestampMs: message.storeTimestampMs,
              checks,
              dueMs:
                checks === 0
                  ? message.storeTimestampMs + this.options.checkDelayMs
                  : lastCheckMs + this.backoffMs(checks),
              removed: false,
            });
          }
          if (result.nextQueueOffset <= from) break;
          from = result.nextQueueOffset;
        }
      }
    }
    found.sort((a, b) => a.storeTimestampMs - b.storeTimestampMs);
    for (const half of found) {
      this.halves.add(half);
      if (half.checks >= this.options.maxChecks) this.halves.reschedule(half, half.dueMs, true);
    }
    const undispatched = this.ledger.undispatched();
    for (const { half, queue, offset } of undispatched) {
      const result = await store.readQueue(half, queue, offset, { maxMessages: 1 });
      const message = result.messages[0];
      if (message?.queueOffset === offset) this.failedDispatches.set(message.logOffset, message);
    }
    // copied now, before the broker serves (a failure is left to the sweep)
    for (const message of [...this.failedDispatches.values()])
      await this.dispatchOrRemember(message).catch(() => undefined);
    this.recovered = true;
    this.core.logger.info(
      { undecided: found.length, redispatched: undispatched.length },
      'transactions recovered',
    );
  }

  /** The lowest log offset of a half message still needed — undecided, or committed with its
   *  copy not made yet — for retention: the segment holding it and every later one are kept,
   *  whatever their age (an undecided half waits up to maxAgeMs, which may exceed the store's
   *  retention). Before recovery 0 (keep everything); Infinity when nothing is needed. */
  retentionFloor(): number {
    if (!this.recovered) return 0;
    let floor = this.halves.minLogOffset();
    for (const logOffset of this.failedDispatches.keys()) if (logOffset < floor) floor = logOffset;
    return floor;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      this.core.track(
        this.sweep().finally(() => (this.sweeping = false)),
        'transaction limits sweep',
      );
    }, this.options.sweepIntervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** Forgets a deleted topic's transactions and drops its half topic. */
  async dropTopic(topic: TopicDescriptor): Promise<void> {
    const half = halfTopic(topic);
    this.forgetFailedDispatches((name) => name === half);
    // forgotten before the drop is journaled: a sweep meanwhile journals no rollback after the
    // drop, which replay would apply to the half queue of a topic created again
    this.halves.dropHalfTopic(half);
    await this.core.journal.record([{ op: 'txn-drop', half }]);
    await this.core.store.deleteTopic(half);
  }

  /** Forgets the transactions of an instance's half topics (the caller deletes the topics). */
  async dropInstance(tenantId: string, instanceId: string): Promise<void> {
    const prefix = `${tenantId}/${instanceId}/`;
    const halves = this.core.store
      .topics()
      .filter((name) => name.startsWith(prefix) && targetOfHalfTopic(name) !== null);
    this.forgetFailedDispatches((name) => name.startsWith(prefix));
    if (halves.length === 0) return;
    for (const half of halves) this.halves.dropHalfTopic(half); // before: as dropTopic's
    await this.core.journal.record(halves.map((half) => ({ op: 'txn-drop', half })));
  }

  // ---- internals ----

  /** The half message a transaction id names, or TransactionNotFound (malformed, forged, another
   *  tenant's or topic's, expired, or of a topic deleted since). */
  private async locate(topic: TopicDescriptor, transactionId: string): Promise<StoredMessage> {
    const position = this.core.ids.decode(transactionScope(topic), transactionId);
    const message =
      position === null || position.brokerId !== this.core.brokerId
        ? null
        : await this.core.store.readMessage(position.logOffset);
    // a half of a topic deleted since (and maybe created again) is not this topic's: decided by
    // the log position of the deletion, not by clocks (the topic's createdAt is a gateway's)
    if (
      message === null ||
      message.topic !== halfTopic(topic) ||
      this.core.store.deletedAfter(message.topic, message.logOffset)
    ) {
      throw new WharfError('TransactionNotFound', 'no such transaction');
    }
    return message;
  }

  private async decide(
    topic: TopicDescriptor,
    message: StoredMessage,
    wanted: 'COMMITTED' | 'ROLLED_BACK',
    options: TransactionDecisionOptions,
  ): Promise<void> {
    const { topic: half, queueId, queueOffset } = message;
    const current = this.ledger.decision(half, queueId, queueOffset);
    // idempotent: the decision is already durable (and a commit's copy made or remembered)
    if (current === wanted && options.refuseRepeat !== true) return;
    if (current !== 'UNDECIDED') {
      throw new WharfError(
        'Conflict',
        `the transaction was already ${current === 'COMMITTED' ? 'committed' : 'rolled back'}`,
      );
    }
    // Applied only once durable: a decision the disk refused (a full disk: its bytes are cut
    // back when space returns) decides nothing — no repeat answers 204 and no contrary one 409
    // on it, nothing is copied, the half stays offered for check-back — so no restart can undo
    // what was answered.
    this.deciding.add(message.logOffset);
    try {
      await this.core.journal.recordDurably(
        [
          {
            op: wanted === 'COMMITTED' ? 'txn-commit' : 'txn-rollback',
            half,
            queue: queueId,
            offset: queueOffset,
          },
        ],
        // the topic deleted meanwhile: the decision is not for a half of one created again
        () => !this.core.store.deletedAfter(half, message.logOffset),
      );
    } finally {
      this.deciding.delete(message.logOffset);
    }
    // an automatic rollback journaled first stands (TransactionLedger.apply)
    const decided = this.ledger.decision(half, queueId, queueOffset);
    if (decided === 'UNDECIDED') {
      // not applied: the topic was deleted while the decision was written (as locate says)
      throw new WharfError('TransactionNotFound', 'no such transaction');
    }
    if (decided !== wanted) {
      throw new WharfError(
        'Conflict',
        `the transaction was already ${decided === 'COMMITTED' ? 'committed' : 'rolled back'}`,
      );
    }
    this.halves.remove(half, message.logOffset);
    this.trace(half, [
      {
        position: halfTracePosition(topic.topic, queueId, queueOffset),
        time: Date.now(),
        type: wanted,
      },
    ]);
  }

  /** dispatch(); a failure is remembered for the sweep to retry, and thrown. */
  private async dispatchOrRemember(message: StoredMessage): Promise<void> {
    try {
      await this.dispatch(message);
      this.failedDispatches.delete(message.logOffset);
    } catch (error) {
      this.failedDispatches.set(message.logOffset, message);
      throw error;
    }
  }

  /** Copies a committed half message to its target queue once (see the file comment). */
  private async dispatch(message: StoredMessage): Promise<void> {
    const { topic: half, queueId, queueOffset, logOffset } = message;
    if (this.ledger.isDispatched(half, queueId, queueOffset)) return;
    const target = targetOfHalfTopic(half) as string;
    const key = committedKey(logOffset);
    const [earlier] = await this.core.store.queryByKey(target, key, 1);
    if (earlier === undefined) {
      // the message id users hold is the half's: the target store topic is its scope
      const messageId = this.core.ids.encodeOne(target, {
        brokerId: this.core.brokerId,
        logOffset,
      });
      // the topic deleted while this looked for an earlier copy (or the decision was written):
      // a copy now would land past the deletion, in a topic created again under the name.
      // Checked in the turn of the append's placing, as a publish is: a deletion after it puts
      // the copy below itself, with the deleted topic's messages
      if (this.core.store.deletedAfter(target, logOffset)) return;
      const [stored] = await this.core.store.append([
        {
          topic: target,
          queueId,
          ...(message.tag !== '' ? { tag: message.tag } : {}),
          keys: [...message.keys, key],
          properties: {
            ...message.properties,
            [SystemProperty.messageId]: messageId,
            [SystemProperty.originPublishTime]: String(message.storeTimestampMs),
          },
          body: message.body, // a sealed envelope stays sealed (same instance, same key)
          bornTimestampMs: message.bornTimestampMs,
          flags: message.flags & MessageFlags.SEALED,
        },
      ]);
      const counters = this.core.counters.topic(target);
      counters.publish.add(1);
      counters.bytesIn += stored.size;
    }
    // the decision again beside the copy (a no-op on replay: it was durable before any copy)
    await this.core.journal.record([
      { op: 'txn-commit', half, queue: queueId, offset: queueOffset },
      { op: 'txn-dispatched', half, queue: queueId, offsets: [queueOffset] },
    ]);
  }

  /** Takes the due halves: those past a limit are rolled back, the others offered. */
  private async offer(
    topic: TopicDescriptor,
    half: string,
    max: number,
    maxBodyBytes: number,
  ): Promise<CheckedMessage[]> {
    const now = Date.now();
    const due = this.halves.takeDue(half, now, max);
    if (due.length === 0) return [];
    // read before an offer is counted, in order, until the byte budget is used: halves past it
    // are neither read nor offered now (at most one is read that does not fit)
    const stored = new Map<UndecidedHalf, StoredMessage | null>();
    let readBytes = 0;
    try {
      for (const item of due) {
        if (stored.size > 0 && readBytes >= maxBodyBytes) break;
        if (this.expiryOf(item, now) !== null) continue;
        const message = await this.core.store.readMessage(item.logOffset);
        stored.set(item, message);
        readBytes += message?.body.length ?? 0;
      }
    } catch (error) {
      for (const item of due) {
        if (!item.removed) this.halves.reschedule(item, item.storeTimestampMs, false);
      }
      throw error;
    }
    const offered: UndecidedHalf[] = [];
    const messages: (StoredMessage | null)[] = [];
    const expired: [UndecidedHalf, AutoRollbackReason][] = [];
    let bytes = 0;
    let putBack = false;
    for (const item of due) {
      if (item.removed) continue; // decided while it was read
      const expiry = this.expiryOf(item, now);
      const message = stored.get(item);
      const size = message?.body.length ?? 0;
      if (expiry !== null) expired.push([item, expiry]);
      else if (message === undefined || (offered.length > 0 && bytes + size > maxBodyBytes)) {
        this.halves.reschedule(item, item.storeTimestampMs, false); // due still, not offered
        putBack = true;
      } else {
        bytes += size;
        messages.push(message);
        item.checks++;
        this.halves.reschedule(
          item,
          now + this.backoffMs(item.checks),
          item.checks >= this.options.maxChecks,
        );
        offered.push(item);
      }
    }
    // checks parked elsewhere on the topic take what did not fit this one at once
    if (putBack) this.core.longPoll.notify(checkPollKey(half));
    // traced in the turn the offers were made: a commit answered while the awaits below run
    // is recorded after them, as it happened after them (the trace lists events in log order)
    if (offered.length > 0)
      this.trace(
        half,
        offered.map((item) => ({
          position: halfTracePosition(topic.topic, item.queueId, item.queueOffset),
          time: now,
          type: 'CHECKED',
          checkCount: item.checks,
        })),
      );
    if (expired.length > 0) await this.autoRollback(expired);
    if (offered.length === 0) return [];
    await this.core.journal.record(checkEntries(half, offered, now));
    await this.core.bodyKeys.ready(topic.tenantId, topic.instanceId);
    const answer: CheckedMessage[] = [];
    for (const [i, item] of offered.entries()) {
      const message = messages[i];
      const body = message === null ? null : this.core.bodyKeys.open(message);
      if (message === null || body === null) continue; // expired, or its key is gone
      const [messageId, transactionId] = [messageScope(topic), transactionScope(topic)].map(
        (scope) =>
          this.core.ids.encodeOne(scope, {
            brokerId: this.core.brokerId,
            logOffset: item.logOffset,
          }),
      );
      answer.push({
        transactionId,
        messageId,
        ...userFields(message, body),
        publishTime: message.storeTimestampMs,
        checkCount: item.checks,
        nextCheckTime: now + this.backoffMs(item.checks), // as rescheduled above
      });
    }
    return answer;
  }

  /** Why a due half is rolled back rather than offered, if it is. */
  private expiryOf(item: UndecidedHalf, now: number): AutoRollbackReason | null {
    if (now - item.storeTimestampMs >= this.options.maxAgeMs) return 'AGE_LIMIT';
    if (item.checks >= this.options.maxChecks) return 'CHECK_LIMIT';
    return null;
  }

  /** Enforces the limits without a check call: the oldest past maxAgeMs, and those whose last
   *  offer went unanswered. A batch per tick. */
  private async sweep(): Promise<void> {
    const now = Date.now();
    const expired: [UndecidedHalf, AutoRollbackReason][] = [
      ...this.halves
        .olderThan(now - this.options.maxAgeMs, SWEEP_BATCH)
        .map((item): [UndecidedHalf, AutoRollbackReason] => [item, 'AGE_LIMIT']),
      ...this.halves
        .exhaustedDue(now, SWEEP_BATCH)
        .map((item): [UndecidedHalf, AutoRollbackReason] => [item, 'CHECK_LIMIT']),
    ];
    if (expired.length > 0) await this.autoRollback(expired);
    for (const [logOffset, message] of [...this.failedDispatches]) {
      await this.serialized(logOffset, () => this.dispatchOrRemember(message)).catch(
        (error: unknown) =>
          this.core.logger.warn({ err: error }, 'committed message not copied yet'),
      );
    }
  }

  /** One journal write for the batch, applied once durable (a refused write rolls nothing back:
   *  the next sweep tries again). A producer's decision racing it: whichever entry is journaled
   *  first stands (TransactionLedger.apply), and only halves this batch rolled back are traced. */
  private async autoRollback(
    expired: readonly [UndecidedHalf, AutoRollbackReason][],
  ): Promise<void> {
    const entries: TxnEntry[] = [];
    const logOffsets = new Map<TxnEntry, number>();
    const taken: [UndecidedHalf, AutoRollbackReason][] = [];
    const seen = new Set<UndecidedHalf>();
    // an expired half taken off the due heap (offer) and not rolled back now — being decided,
    // or the write refused — is due again, so a later sweep rolls it back (else it would wait
    // for its age limit)
    const putBack = (item: UndecidedHalf): void => {
      if (!item.removed && item.dueMs === Number.POSITIVE_INFINITY)
        this.halves.reschedule(item, Date.now(), item.checks >= this.options.maxChecks);
    };
    for (const [item, reason] of expired) {
      if (seen.has(item) || item.removed) continue;
      seen.add(item);
      if (this.deciding.has(item.logOffset)) {
        putBack(item);
        continue;
      }
      if (this.ledger.decision(item.half, item.queueId, item.queueOffset) !== 'UNDECIDED') continue;
      const entry: TxnEntry = {
        op: 'txn-rollback',
        half: item.half,
        queue: item.queueId,
        offset: item.queueOffset,
      };
      entries.push(entry);
      logOffsets.set(entry, item.logOffset);
      taken.push([item, reason]);
    }
    if (entries.length === 0) return;
    for (const [item] of taken) this.deciding.add(item.logOffset);
    try {
      // the topic deleted meanwhile: not for a half of one created again
      await this.core.journal.recordDurably(
        entries,
        (entry) => !this.core.store.deletedAfter(entry.half, logOffsets.get(entry) ?? 0),
      );
    } catch (error) {
      for (const [item] of taken) putBack(item);
      throw error;
    } finally {
      for (const [item] of taken) this.deciding.delete(item.logOffset);
    }
    const time = Date.now();
    for (const [item, reason] of taken) {
      if (this.ledger.decision(item.half, item.queueId, item.queueOffset) !== 'ROLLED_BACK')
        continue;
      this.halves.remove(item.half, item.logOffset);
      const { topic } = partsOf(item.half);
      this.core.logger.info(
        { half: item.half, queueId: item.queueId, queueOffset: item.queueOffset, reason },
        'undecided half message rolled back',
      );
      this.trace(item.half, [
        {
          position: halfTracePosition(topic, item.queueId, item.queueOffset),
          time,
          type: 'ROLLED_BACK',
          reason,
          checkCount: item.checks,
        },
      ]);
    }
  }

  private forgetFailedDispatches(matches: (half: string) => boolean): void {
    for (const [logOffset, message] of [...this.failedDispatches])
      if (matches(message.topic)) this.failedDispatches.delete(logOffset);
  }

  private backoffMs(checks: number): number {
    return Math.min(
      this.options.checkDelayMs * 2 ** Math.min(checks, 30),
      this.options.maxCheckIntervalMs,
    );
  }

  private trace(half: string, events: TracedEvent[]): void {
    const { tenantId, instanceId } = partsOf(half);
    this.core.traceLog?.record(tenantId, instanceId, events);
  }

  private async serialized(key: number, work: () => Promise<void>): Promise<void> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(work);
    const settled = run.catch(() => undefined);
    this.locks.set(key, settled);
    try {
      await run;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}

/** One txn-check entry per queue of the offered halves. */
function checkEntries(half: string, offered: readonly UndecidedHalf[], at: number): TxnEntry[] {
  const byQueue = new Map<number, number[]>();
  for (const item of offered) {
    const offsets = byQueue.get(item.queueId) ?? [];
    offsets.push(item.queueOffset);
    byQueue.set(item.queueId, offsets);
  }
  return [...byQueue].map(([queue, offsets]) => ({ op: 'txn-check', half, queue, offsets, at }));
}

/** Read through a call, so that a check made before an await does not narrow it for after. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
