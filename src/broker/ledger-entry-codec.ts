// Ledger entry codec: one consumer-ledger change as one journal entry. Grammar (UTF-8 JSON, one
// object an entry, `v` first):
//   {"v":1,"op":"start"|"reset"|"clamp","sub":S,"queue":Q,"offset":N}   (clamp: the queue ends
//     at N, below the cursor, found by a read: QueueCursor.clampTo)
//   {"v":1,"op":"deliver","sub":S,"queue":Q,"d":[[queueOffset,attempt,firstDeliveryMs,
//     nextVisibleMs,redeliverAtMs],…],"pull":N,"from":N}
//   {"v":1,"op":"complete","sub":S,"queue":Q,"offsets":[N,…]}
//   {"v":1,"op":"vis","sub":S,"queue":Q,"offset":N,"nextVisibleMs":T,"redeliverAtMs":T[,"attempt":A]}
//     (attempt: the delivery count from then on, set when a delivery is returned unseen)
//   {"v":1,"op":"slot","group":G,"consumerId":C,"slot":N}   {"v":1,"op":"dlqDone","group":G,
//     "offsets":[N,…]}   {"v":1,"op":"dlqResend","group":G,"offsets":[N,…]}
//   {"v":1,"op":"conf","topic":TopicDescriptor,"group":GroupDescriptor}
//   {"v":1,"op":"dropGroup","group":G}   {"v":1,"op":"dropTopic","topic":T}
// Transactions (src/broker/transaction-ledger.ts), H = half store topic:
//   {"v":1,"op":"txn-commit"|"txn-rollback","half":H,"queue":Q,"offset":N}
//   {"v":1,"op":"txn-dispatched","half":H,"queue":Q,"offsets":[N,…]}
//   {"v":1,"op":"txn-check","half":H,"queue":Q,"offsets":[N,…],"at":T}   {"v":1,"op":"txn-drop","half":H}
// Withdrawn messages (src/broker/withdrawals.ts), T = store topic:
//   {"v":1,"op":"withdraw","topic":T,"queue":Q,"offsets":[N,…]}   {"v":1,"op":"withdraw-drop","topic":T}
// S = "groupKey\0storeTopic\0slot", Q in [0, 0xffff] (0xffff: the re-send queue). Entries written
// before versions existed have no `v`: they are version 1 (the same shape). JSON stays: for an
// ack's entry a binary layout measured ≈0.4–0.6 µs and 90 bytes against JSON's ≈1.1–1.3 µs and
// 143 bytes (the `v` adds 6 bytes, no time), one entry per acked queue, far below the journal
// write and fdatasync the ack waits for.
import type { GroupDescriptor, RetryPolicy, TopicDescriptor } from '../model/index.js';
import { WharfError } from '../errors.js';
import type { DeliveryTuple, LedgerEntry } from './consumer-ledger.js';
import type { TxnEntry } from './transaction-ledger.js';
import type { WithdrawEntry } from './withdrawals.js';
import {
  arrayOf,
  badField,
  intOf,
  intsOf,
  numberOf,
  objectOf,
  oneOf,
  parseJsonObject,
  stringOf,
  versionOf,
} from './json-fields.js';

export const LEDGER_ENTRY_VERSION = 1;
/** Highest queue id an entry may name (RESEND_QUEUE_ID). */
const MAX_QUEUE_ID = 0xffff;
const VERSION_PREFIX = `{"v":${LEDGER_ENTRY_VERSION},`;

/** What the journal holds: consumer-ledger entries, transaction entries and withdrawals. */
export type JournalEntry = LedgerEntry | TxnEntry | WithdrawEntry;

export function encodeLedgerEntry(entry: JournalEntry): Buffer {
  // the version spliced in front: no copy of the entry object on the ack path
  return Buffer.from(VERSION_PREFIX + JSON.stringify(entry).slice(1));
}

/** Decodes an entry; `where` names it in errors (e.g. "journal entry 12 after the snapshot"). */
export function decodeLedgerEntry(data: Buffer, where = 'ledger entry'): JournalEntry {
  const object = parseJsonObject(data.toString(), where);
  versionOf(object, where, LEDGER_ENTRY_VERSION);
  return ledgerEntryOf(object, where);
}

function subscriptionKeyOf(value: unknown, where: string): string {
  const key = stringOf(value, where, 'sub');
  const parts = key.split('\u0000');
  if (parts.length !== 3 || !/^(0|[1-9][0-9]{0,9})$/.test(parts[2]))
    throw badField(where, 'sub', 'a subscription key');
  return key;
}

function ledgerEntryOf(o: Record<string, unknown>, where: string): JournalEntry {
  const op = stringOf(o.op, where, 'op');
  switch (op) {
    // ---- transactions ----
    case 'txn-commit':
    case 'txn-rollback':
      return {
        op,
        half: stringOf(o.half, where, 'half'),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offset: intOf(o.offset, where, 'offset'),
      };
    case 'txn-dispatched':
      return {
        op,
        half: stringOf(o.half, where, 'half'),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offsets: intsOf(o.offsets, where, 'offsets'),
      };
    case 'txn-check':
      return {
        op,
        half: stringOf(o.half, where, 'half'),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offsets: intsOf(o.offsets, where, 'offsets'),
        at: numberOf(o.at, where, 'at'),
      };
    case 'txn-drop':
      return { op, half: stringOf(o.half, where, 'half') };
    // ---- withdrawn messages (publish fences) ----
    case 'withdraw':
      return {
        op,
        topic: stringOf(o.topic, where, 'topic'),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offsets: intsOf(o.offsets, where, 'offsets'),
      };
    case 'withdraw-drop':
      return { op, topic: stringOf(o.topic, where, 'topic') };
    // ---- consumer ledger ----
    case 'start':
    case 'reset':
    case 'clamp':
      return {
        op,
        sub: subscriptionKeyOf(o.sub, where),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offset: intOf(o.offset, where, 'offset'),
      };
    case 'deliver':
      return {
        op,
        sub: subscriptionKeyOf(o.sub, where),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        d: arrayOf(o.d, where, 'd').map((item, i) => deliveryTupleOf(item, where, `d[${i}]`)),
        pull: intOf(o.pull, where, 'pull'),
        from: intOf(o.from, where, 'from'),
      };
    case 'complete':
      return {
        op,
        sub: subscriptionKeyOf(o.sub, where),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offsets: intsOf(o.offsets, where, 'offsets'),
      };
    case 'vis':
      return {
        op,
        sub: subscriptionKeyOf(o.sub, where),
        queue: intOf(o.queue, where, 'queue', 0, MAX_QUEUE_ID),
        offset: intOf(o.offset, where, 'offset'),
        nextVisibleMs: numberOf(o.nextVisibleMs, where, 'nextVisibleMs'),
        redeliverAtMs: numberOf(o.redeliverAtMs, where, 'redeliverAtMs'),
        ...(o.attempt === undefined
          ? {}
          : { attempt: intOf(o.attempt, where, 'attempt', 0, 1000) }),
      };
    case 'slot':
      return {
        op,
        group: stringOf(o.group, where, 'group'),
        consumerId: stringOf(o.consumerId, where, 'consumerId'),
        slot: intOf(o.slot, where, 'slot'),
      };
    case 'dlqDone':
    case 'dlqResend':
      return {
        op,
        group: stringOf(o.group, where, 'group'),
        offsets: intsOf(o.offsets, where, 'offsets'),
      };
    case 'conf':
      return {
        op,
        topic: topicDescriptorOf(o.topic, where, 'topic'),
        group: groupDescriptorOf(o.group, where, 'group'),
      };
    case 'dropGroup':
      return { op, group: stringOf(o.group, where, 'group') };
    case 'dropTopic':
      return { op, topic: stringOf(o.topic, where, 'topic') };
    default:
      throw new WharfError('CorruptIndex', `${where}: unknown op ${JSON.stringify(op)}`, {
        details: { where, field: 'op' },
      });
  }
}

function deliveryTupleOf(value: unknown, where: string, field: string): DeliveryTuple {
  const tuple = arrayOf(value, where, field);
  if (tuple.length !== 5) throw badField(where, field, 'a 5-item delivery');
  return [
    intOf(tuple[0], where, `${field}[0]`),
    intOf(tuple[1], where, `${field}[1]`),
    numberOf(tuple[2], where, `${field}[2]`),
    numberOf(tuple[3], where, `${field}[3]`),
    numberOf(tuple[4], where, `${field}[4]`),
  ];
}

const MESSAGE_TYPES = ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION'] as const;
const DELIVERY_MODES = ['CLUSTERING', 'BROADCASTING'] as const;

export function topicDescriptorOf(value: unknown, where: string, field: string): TopicDescriptor {
  const o = objectOf(value, where, field);
  return {
    tenantId: stringOf(o.tenantId, where, `${field}.tenantId`),
    instanceId: stringOf(o.instanceId, where, `${field}.instanceId`),
    topic: stringOf(o.topic, where, `${field}.topic`),
    messageType: oneOf(o.messageType, MESSAGE_TYPES, where, `${field}.messageType`),
    queueCount: intOf(o.queueCount, where, `${field}.queueCount`, 1, MAX_QUEUE_ID),
    retentionHours: numberOf(o.retentionHours, where, `${field}.retentionHours`, 0),
    dedupWindowMs: numberOf(o.dedupWindowMs, where, `${field}.dedupWindowMs`, 0),
    createdAt: numberOf(o.createdAt, where, `${field}.createdAt`),
  };
}

export function groupDescriptorOf(value: unknown, where: string, field: string): GroupDescriptor {
  const o = objectOf(value, where, field);
  // key order as the gateway builds it, so a decoded descriptor serializes as it was written
  return {
    tenantId: stringOf(o.tenantId, where, `${field}.tenantId`),
    instanceId: stringOf(o.instanceId, where, `${field}.instanceId`),
    group: stringOf(o.group, where, `${field}.group`),
    deliveryMode: oneOf(o.deliveryMode, DELIVERY_MODES, where, `${field}.deliveryMode`),
    maxDeliveryAttempts: intOf(o.maxDeliveryAttempts, where, `${field}.maxDeliveryAttempts`, 1),
    invisibleSeconds: numberOf(o.invisibleSeconds, where, `${field}.invisibleSeconds`, 0),
    ...(o.retryPolicy !== undefined
      ? { retryPolicy: retryPolicyOf(o.retryPolicy, where, `${field}.retryPolicy`) }
      : {}),
    createdAt: numberOf(o.createdAt, where, `${field}.createdAt`),
    ...(o.incarnation !== undefined
      ? { incarnation: stringOf(o.incarnation, where, `${field}.incarnation`) }
      : {}),
  };
}

function retryPolicyOf(value: unknown, where: string, field: string): RetryPolicy {
  const o = objectOf(value, where, field);
  if (o.backoffSeconds !== undefined) {
    return {
      backoffSeconds: arrayOf(o.backoffSeconds, where, `${field}.backoffSeconds`).map((s, i) =>
        numberOf(s, where, `${field}.backoffSeconds[${i}]`, 0),
      ),
    };
  }
  const e = objectOf(o.exponential, where, `${field}.exponential`);
  return {
    exponential: {
      initialSeconds: numberOf(e.initialSeconds, where, `${field}.exponential.initialSeconds`, 0),
      multiplier: numberOf(e.multiplier, where, `${field}.exponential.multiplier`, 0),
      maxSeconds: numberOf(e.maxSeconds, where, `${field}.exponential.maxSeconds`, 0),
    },
  };
}
