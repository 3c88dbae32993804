// The store's face. The broker and every later feature use only what this file exports.
// Invariants (see ../../../shared/ARCHITECTURE.md, "The store", and ./README.md):
// - append() resolves only when its records are written and, under the `sync` flush policy,
//   fdatasync'ed; a message becomes readable (and wakes listeners) only once its append is durable
//   under the policy, so a consumer never sees a message a crash can take back.
// - After SIGKILL at any moment, reopening yields every acknowledged record exactly once, intact.
export * from './types.js';
export type {
  MessageStore,
  MessageStoreOptions,
  StateJournal,
  StateJournalRecovery,
  StoreHealth,
  CommitObserver,
  CommitRound,
} from './message-store-api.js';

/**
 * Opens the store in `options.dir` (creating it when empty) and resolves once recovery is done:
 * the commit log is verified from the last checkpoint (torn tail truncated, mid-log damage
 * quarantined and reported in `store.recovery`), consume queues and the key index are rebuilt
 * past their checkpoints, and the state journal is recovered. Then it serves.
 *
 * Semantics the broker relies on:
 * - `append(batch)` assigns queue offsets synchronously, in call order; it resolves when the
 *   batch is durable under the flush policy AND dispatched, so a `readQueue` issued after it
 *   resolves sees the messages. `onDispatch` listeners have run by then, once per touched queue.
 *   Refusals are WharfErrors: `AppendQueueFull` and `DiskFull` (retriable, with retryAfterMs),
 *   `RecordTooLarge`, `InvalidArgument`, `StoreClosed`; `IoError` when a write or fsync failed
 *   (the store then refuses everything until it is reopened).
 * - `readQueue` statuses: FOUND (messages, possibly none when a tag filter skipped every entry
 *   examined: continue from nextQueueOffset), NO_MESSAGE (at the end), OFFSET_EXPIRED (below
 *   the min: nextQueueOffset = min), OFFSET_OVERFLOW (past the max: nextQueueOffset = max, e.g.
 *   a committed offset beyond a log truncated by corruption recovery). Bodies may share memory
 *   with the store's caches (a 1 MiB staging slab or read-ahead block, kept alive while a body
 *   is held): do not modify them; copy a body kept for long. A record read from a file that
 *   fails its CRC (records still in the cache of recent writes are not checksummed again: they
 *   never left memory), or an entry that points at no matching record, is passed over like an
 *   entry a filter leaves out, logged once as an error and counted (stats().corruptMessagesSkipped);
 *   `readMessage` of such a record throws `CorruptRecord`. Reads of a backlog are served from read-ahead caches, bounded by
 *   `consumeQueueCacheBytes` and `readAheadCacheBytes`.
 * - `readMessage(logOffset)` returns null for any position that is not a live message start, so
 *   the message-id codec (protocol room) can map ids to logOffsets by arithmetic.
 * - `journal`: call `recover()` once at start-up before appending; `append` resolves when
 *   durable; `writeSnapshot(buf)` captures the journal position at call time, so serialize your
 *   state synchronously in the same tick you call it.
 */
export { MIN_FREE_DISK_FLOOR_BYTES, openMessageStore } from './message-store.js';

/**
 * The exclusive OS lock of a directory (`<dir>/lock`, an fcntl open-file-description lock that
 * dies with its process): `lockDir` takes it at once or throws `DirLockedError`, naming the
 * directory and the holder's pid. The store takes it on its own directory at open.
 */
export { DirLockedError, lockDir, type DirLock } from './dir-lock.js';
