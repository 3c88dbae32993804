// The consumer ledger's durability: every change is applied to the ledger and appended to the
// store's state journal (record), and snapshots of the ledger (with the topics' byte counters)
// bound the journal. Start-up (recover) loads the latest snapshot, replays the entries after it,
// then clamps every cursor (and the decisions on half messages) to what the store holds: a log
// tail lost under the async policy (or to damage) must not make a group skip what is written
// there next, nor a new half message inherit a lost one's decision, and retention may have
// deleted the head.
// A clamp is no journal entry, so a snapshot holds it before the broker serves: replay after a
// second crash must not start past the queue's end again, over messages stored there since.
// A change its caller is answered about (a reset) is applied only once durable (recordDurably):
// refused, it leaves the ledger as it was, as the caller is told.
import type { MessageStore } from '../store/index.js';
import type { BrokerLogger } from './broker-logger.js';
import { decodeBrokerSnapshot, encodeBrokerSnapshot } from './broker-snapshot.js';
import type { ConsumerLedger } from './consumer-ledger.js';
import type { Counters } from './counters.js';
import { decodeLedgerEntry, encodeLedgerEntry, type JournalEntry } from './ledger-entry-codec.js';
import { deadLetterTopicOf, RESEND_QUEUE_ID, resendTopicOf } from './names.js';
import { isTxnEntry, TransactionLedger } from './transaction-ledger.js';
import { isWithdrawEntry, Withdrawals } from './withdrawals.js';

export class LedgerJournal {
  /** Decisions on half messages (txn-* entries), journaled beside the consumer ledger. */
  readonly transactions = new TransactionLedger();
  /** Messages withdrawn by publish fences (withdraw entries). */
  readonly withdrawals = new Withdrawals();
  private snapshotting: Promise<void> | undefined;
  /** Cursors were clamped at start-up and no snapshot holds it yet. */
  private clampUnsaved = false;
  /** Clamps left to a snapshot so far: a snapshot serialized before the last one does not hold
   *  it, so its completion leaves clampUnsaved set. */
  private clamps = 0;
  /** Bytes in of every topic together as the last snapshot written holds them. */
  private savedBytesIn = 0;
  /** recordDurably calls whose entries are in the journal but not applied yet: a snapshot taken
   *  now would be past them without them, so it waits (snapshotWaiting) until they are applied. */
  private unapplied = 0;
  private snapshotWaiting = false;
  /** Called once `unapplied` is back to 0 (close waits for it). */
  private allApplied: (() => void)[] = [];

  constructor(
    private readonly store: MessageStore,
    private readonly ledger: ConsumerLedger,
    private readonly counters: Counters,
    private readonly logger: BrokerLogger,
    /** Snapshot once the journal grew by this much since the last one. */
    private readonly snapshotAfterBytes: number,
  ) {}

  /** Applies entries to the ledger now; resolves when they are durable in the journal. */
  async record(entries: readonly JournalEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.apply(entry);
    await this.store.journal.append(entries.map(encodeLedgerEntry));
    if (this.store.journal.bytesSinceSnapshot() > this.snapshotAfterBytes) this.snapshotSoon();
  }

  /**
   * Appends entries and applies them once they are durable: a refusal (a full disk, a full
   * append queue) changes nothing. For a change whose caller is answered (a reset), never for
   * deliveries and acks, which record() applies at once. Entries recorded while it waits are
   * applied before these and journaled after them, so replay applies them after: a delivery or
   * ack on a cursor being reset then counts on the reset one (owed or done there), nothing is
   * skipped that was not acked.
   */
  async recordDurably<E extends JournalEntry>(
    entries: readonly E[],
    /** Whether an entry still applies once written (false: its subject went meanwhile). */
    stillApplies: (entry: E) => boolean = () => true,
  ): Promise<void> {
    if (entries.length === 0) return;
    this.unapplied++;
    try {
      await this.store.journal.append(entries.map(encodeLedgerEntry));
      for (const entry of entries) if (stillApplies(entry)) this.apply(entry);
    } finally {
      this.unapplied--;
      if (this.unapplied === 0) {
        for (const resolve of this.allApplied.splice(0)) resolve();
        if (this.snapshotWaiting) {
          this.snapshotWaiting = false;
          this.snapshotSoon();
        }
      }
    }
    if (this.store.journal.bytesSinceSnapshot() > this.snapshotAfterBytes) this.snapshotSoon();
  }

  /** Rebuilds the ledger and byte counters (once, at start-up, before any record). */
  async recover(): Promise<void> {
    const startedAt = Date.now();
    const recovery = this.store.journal.recover();
    if (recovery.snapshot !== null) {
      const snapshot = decodeBrokerSnapshot(recovery.snapshot);
      this.ledger.restore(snapshot.ledger);
      this.counters.restoreBytesIn(snapshot.bytesIn);
      this.savedBytesIn = this.counters.totalBytesIn();
      if (snapshot.transactions !== undefined) this.transactions.restore(snapshot.transactions);
      if (snapshot.withdrawn !== undefined) this.withdrawals.restore(snapshot.withdrawn);
    }
    let entries = 0;
    for await (const data of recovery.entries) {
      entries++;
      this.apply(decodeLedgerEntry(data, `journal entry ${entries} after the snapshot`));
    }
    // what the store holds bounds every withdrawal, dead-letter record and cursor (retention
    // below, a lost async tail above)
    let clamped = this.ledger.trimDeadLettersDone((group) =>
      this.store.queueOffsets(deadLetterTopicOf(group), 0),
    )
      ? 1
      : 0;
    for (const [topic, queue] of this.withdrawals.queueList()) {
      const { minQueueOffset, maxQueueOffset } = this.store.queueOffsets(topic, queue);
      if (this.withdrawals.trimTo(topic, queue, minQueueOffset, maxQueueOffset)) clamped++;
    }
    // state past a queue's end: records the log lost (its new ones must not take their
    // positions, the store seals its segment below)
    let pastEnd = false;
    for (const [half, queue] of this.transactions.queueList()) {
      const { maxQueueOffset } = this.store.queueOffsets(half, queue);
      if (this.transactions.trimFrom(half, queue, maxQueueOffset)) {
        clamped++;
        pastEnd = true;
      }
    }
    for (const sub of this.ledger.allSubscriptions()) {
      for (const [queueId, cursor] of sub.cursors) {
        const [topic, storeQueue] =
          queueId === RESEND_QUEUE_ID
            ? [resendTopicOf(sub.groupKey, sub.topic), 0]
            : [sub.topic, queueId];
        const { minQueueOffset, maxQueueOffset } = this.store.queueOffsets(topic, storeQueue);
        if (cursor.clampTo(maxQueueOffset)) {
          clamped++;
          pastEnd = true;
        }
        cursor.skipExpired(minQueueOffset);
      }
    }
    if (pastEnd) await this.store.sealAfterLoss();
    if (clamped > 0) {
      // fsynced whatever the flush policy; should it fail, the interval writes it again
      this.clampUnsaved = true;
      this.clamps++;
      this.snapshotSoon();
      await this.snapshotting;
    }
    this.logger.info(
      {
        snapshot: recovery.snapshot !== null,
        journalEntries: entries,
        clampedCursors: clamped,
        durationMs: Date.now() - startedAt,
      },
      'consumer state recovered',
    );
  }

  /** A cursor clamp the journal refused: a snapshot holds it (retried until one is written). */
  saveUnjournaledClamp(): void {
    this.clampUnsaved = true;
    this.clamps++;
    this.snapshotSoon();
  }

  /** Starts a snapshot unless one is being written; a failure is logged, the journal stays. */
  snapshotSoon(): void {
    if (this.snapshotting !== undefined) return;
    if (this.unapplied > 0) {
      this.snapshotWaiting = true;
      return;
    }
    this.trimDeadLettersDone();
    // serialized synchronously, in the same tick as writeSnapshot captures the journal position
    const snapshot = encodeBrokerSnapshot({
      ledger: this.ledger.snapshot(),
      bytesIn: this.counters.bytesIn(),
      transactions: this.transactions.snapshot(),
      withdrawn: this.withdrawals.snapshot(),
    });
    const clamps = this.clamps;
    const bytesIn = this.counters.totalBytesIn();
    this.snapshotting = this.store.journal
      .writeSnapshot(snapshot)
      .then(() => {
        if (this.clamps === clamps) this.clampUnsaved = false;
        this.savedBytesIn = bytesIn;
      })
      .catch((error: unknown) =>
        this.logger.error({ err: error }, 'consumer state snapshot failed'),
      )
      .finally(() => (this.snapshotting = undefined));
  }

  /** Re-sent dead letters retention deleted are forgotten (at start and before each snapshot:
   *  what a snapshot carries stays bounded by the dead-letter queues). */
  private trimDeadLettersDone(): void {
    this.ledger.trimDeadLettersDone((group) => ({
      minQueueOffset: this.store.queueOffsets(deadLetterTopicOf(group), 0).minQueueOffset,
    }));
  }

  private apply(entry: JournalEntry): void {
    if (isTxnEntry(entry)) this.transactions.apply(entry);
    else if (isWithdrawEntry(entry)) this.withdrawals.apply(entry);
    else this.ledger.apply(entry);
  }

  /** Snapshots when anything changed since the last snapshot (the interval timer): the consumer
   *  state, or the topics' bytes in (a broker that only takes publishes journals nothing, and
   *  its bytes in would be lost to a crash however long ago they came). */
  snapshotIfChanged(): void {
    if (
      this.store.journal.bytesSinceSnapshot() > 0 ||
      this.clampUnsaved ||
      this.counters.totalBytesIn() !== this.savedBytesIn
    ) {
      this.snapshotSoon();
    }
  }

  /** Resolves when the snapshot being written, if any, is done. */
  async settled(): Promise<void> {
    await this.snapshotting;
  }

  /** The final snapshot at close: waits for one in progress, then writes the current state. */
  async close(): Promise<void> {
    // a durable record still being written is applied first: the final snapshot holds it (else
    // the snapshot would wait for it, and be started after the store closed)
    if (this.unapplied > 0) await new Promise<void>((resolve) => this.allApplied.push(resolve));
    await this.snapshotting;
    this.snapshotSoon();
    await this.snapshotting;
  }
}
