// The store's face. The broker and every later feature use only what this file exports.
// Invariants (see ../../../shared/ARCHITECTURE.md, "The store"):
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
} from './message-store-api.js';
export { openMessageStore } from './message-store.js';
