// Broker snapshot codec: the consumer ledger and the topics' byte counters, written as the state
// journal's snapshot (<dataDir>/journal/snapshot) so replay starts from it. Grammar (UTF-8 JSON):
//   {"v":1,"ledger":{"v":1,"subs":[{"g":groupKey,"t":storeTopic,"s":slot,"retries":N,
//     "q":[[queueId,{"ackOffset":N,"pullOffset":N,"inflight":[[queueOffset,attempt,
//     firstDeliveryMs,nextVisibleMs,redeliverAtMs],…],"done":[[start,end],…],
//     "owed"?:[[start,end],…] (offsets owed a delivery again; absent when none)}],…]}],
//     (the ledger's "v" is 2 when a cursor has "owed", so that an older broker, which would
//     drop them, refuses the snapshot; 1 otherwise)
//     "slots":[[groupKey,[[consumerId,slot],…]],…],"dlq":[[groupKey,[[start,end],…]],…],
//     "dlqResending"?:[[groupKey,[queueOffset,…]],…] (dead letters being re-sent; absent when
//     none, and in snapshots written before it),
//     "confs":[{"topic":TopicDescriptor,"group":GroupDescriptor},…]},"bytesIn":[[storeTopic,N],…],
//     "transactions"?:{"v":1,"queues":[{"h":halfTopic,"q":queueId,"c":[[start,end],…] committed,
//     "r":[[start,end],…] rolled back,"d":[[start,end],…] dispatched,"k":[[queueOffset,checks,
//     lastCheckMs],…]},…]},   (absent in snapshots written before transactions: none decided)
//   "withdrawn"?:{"v":1,"queues":[{"t":storeTopic,"q":queueId,"o":[[start,end],…]},…]}}
//     (absent in snapshots written before publish fences: nothing withdrawn)
// Snapshots written before versions existed have no outer `v`: they are version 1 (the same
// shape). An older snapshot may hold null for redeliverAtMs (Infinity in JSON): due now, read as 0.
import { WharfError } from '../errors.js';
import type { LedgerSnapshot } from './consumer-ledger.js';
import {
  arrayOf,
  badField,
  intOf,
  intsOf,
  numberOf,
  objectOf,
  parseJsonObject,
  rangesOf,
  stringOf,
  versionOf,
} from './json-fields.js';
import { groupDescriptorOf, topicDescriptorOf } from './ledger-entry-codec.js';
import type { CursorSnapshot } from './queue-cursor.js';
import type { CheckTuple, TxnSnapshot } from './transaction-ledger.js';
import type { WithdrawnSnapshot } from './withdrawals.js';

export const BROKER_SNAPSHOT_VERSION = 1;
const SNAPSHOT = 'consumer snapshot (journal/snapshot)';

export interface BrokerSnapshot {
  ledger: LedgerSnapshot;
  /** Bytes published per store topic (topic statistics survive a restart). */
  bytesIn: [string, number][];
  /** Transaction decisions (absent in snapshots written before transactions existed). */
  transactions?: TxnSnapshot;
  /** Withdrawn messages (absent in snapshots written before publish fences existed). */
  withdrawn?: WithdrawnSnapshot;
}

export function encodeBrokerSnapshot(snapshot: BrokerSnapshot): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: BROKER_SNAPSHOT_VERSION,
      ledger: snapshot.ledger,
      bytesIn: snapshot.bytesIn,
      ...(snapshot.transactions !== undefined ? { transactions: snapshot.transactions } : {}),
      ...(snapshot.withdrawn !== undefined && snapshot.withdrawn.queues.length > 0
        ? { withdrawn: snapshot.withdrawn }
        : {}),
    }),
  );
}

export function decodeBrokerSnapshot(data: Buffer, where = SNAPSHOT): BrokerSnapshot {
  const o = parseJsonObject(data.toString(), where);
  versionOf(o, where, BROKER_SNAPSHOT_VERSION);
  return {
    ...(o.transactions !== undefined ? { transactions: txnSnapshotOf(o.transactions, where) } : {}),
    ...(o.withdrawn !== undefined ? { withdrawn: withdrawnSnapshotOf(o.withdrawn, where) } : {}),
    ledger: ledgerSnapshotOf(o.ledger, where),
    bytesIn: arrayOf(o.bytesIn, where, 'bytesIn').map((item, i) => {
      const pair = pairOf(item, where, `bytesIn[${i}]`);
      return [
        stringOf(pair[0], where, `bytesIn[${i}][0]`),
        intOf(pair[1], where, `bytesIn[${i}][1]`),
      ];
    }),
  };
}

/** A section of the snapshot with its own version (1, or up to `latest`). */
function sectionOf(
  value: unknown,
  where: string,
  name: string,
  latest = 1,
): Record<string, unknown> {
  const o = objectOf(value, where, name);
  if (typeof o.v !== 'number' || !Number.isSafeInteger(o.v) || o.v < 1 || o.v > latest) {
    throw new WharfError('UnsupportedFormat', `${where}: ${name} version ${String(o.v)}`, {
      details: { where, field: `${name}.v` },
    });
  }
  return o;
}

function pairOf(value: unknown, where: string, field: string): unknown[] {
  const pair = arrayOf(value, where, field);
  if (pair.length !== 2) throw badField(where, field, 'a pair');
  return pair;
}

function ledgerSnapshotOf(value: unknown, where: string): LedgerSnapshot {
  const o = sectionOf(value, where, 'ledger', 2);
  const snapshot: LedgerSnapshot = {
    v: o.v === 2 ? 2 : 1,
    subs: arrayOf(o.subs, where, 'ledger.subs').map((item, i) => {
      const field = `ledger.subs[${i}]`;
      const sub = objectOf(item, where, field);
      return {
        g: stringOf(sub.g, where, `${field}.g`),
        t: stringOf(sub.t, where, `${field}.t`),
        s: intOf(sub.s, where, `${field}.s`),
        retries: intOf(sub.retries, where, `${field}.retries`),
        q: arrayOf(sub.q, where, `${field}.q`).map((queue, j): [number, CursorSnapshot] => {
          const pair = pairOf(queue, where, `${field}.q[${j}]`);
          return [
            intOf(pair[0], where, `${field}.q[${j}][0]`, 0, 0xffff),
            cursorSnapshotOf(pair[1], where, `${field}.q[${j}][1]`),
          ];
        }),
      };
    }),
    slots: arrayOf(o.slots, where, 'ledger.slots').map((item, i) => {
      const pair = pairOf(item, where, `ledger.slots[${i}]`);
      const slots = arrayOf(pair[1], where, `ledger.slots[${i}][1]`).map(
        (slot, j): [string, number] => {
          const field = `ledger.slots[${i}][1][${j}]`;
          const entry = pairOf(slot, where, field);
          return [stringOf(entry[0], where, `${field}[0]`), intOf(entry[1], where, `${field}[1]`)];
        },
      );
      return [stringOf(pair[0], where, `ledger.slots[${i}][0]`), slots];
    }),
    dlq: arrayOf(o.dlq, where, 'ledger.dlq').map((item, i) => {
      const pair = pairOf(item, where, `ledger.dlq[${i}]`);
      return [
        stringOf(pair[0], where, `ledger.dlq[${i}][0]`),
        rangesOf(pair[1], where, `ledger.dlq[${i}][1]`),
      ];
    }),
  };
  if (o.dlqResending !== undefined) {
    snapshot.dlqResending = arrayOf(o.dlqResending, where, 'ledger.dlqResending').map(
      (item, i): [string, number[]] => {
        const pair = pairOf(item, where, `ledger.dlqResending[${i}]`);
        return [
          stringOf(pair[0], where, `ledger.dlqResending[${i}][0]`),
          intsOf(pair[1], where, `ledger.dlqResending[${i}][1]`),
        ];
      },
    );
  }
  if (o.confs !== undefined) {
    snapshot.confs = arrayOf(o.confs, where, 'ledger.confs').map((item, i) => {
      const conf = objectOf(item, where, `ledger.confs[${i}]`);
      return {
        topic: topicDescriptorOf(conf.topic, where, `ledger.confs[${i}].topic`),
        group: groupDescriptorOf(conf.group, where, `ledger.confs[${i}].group`),
      };
    });
  }
  return snapshot;
}

function cursorSnapshotOf(value: unknown, where: string, field: string): CursorSnapshot {
  const o = objectOf(value, where, field);
  return {
    ackOffset: intOf(o.ackOffset, where, `${field}.ackOffset`),
    pullOffset: intOf(o.pullOffset, where, `${field}.pullOffset`),
    inflight: arrayOf(o.inflight, where, `${field}.inflight`).map((item, i) => {
      const at = `${field}.inflight[${i}]`;
      const tuple = arrayOf(item, where, at);
      if (tuple.length !== 5) throw badField(where, at, 'a 5-item delivery');
      return [
        intOf(tuple[0], where, `${at}[0]`),
        intOf(tuple[1], where, `${at}[1]`),
        numberOf(tuple[2], where, `${at}[2]`),
        numberOf(tuple[3], where, `${at}[3]`),
        tuple[4] === null ? 0 : numberOf(tuple[4], where, `${at}[4]`),
      ];
    }),
    done: rangesOf(o.done, where, `${field}.done`),
    ...(o.owed === undefined ? {} : { owed: rangesOf(o.owed, where, `${field}.owed`) }),
    ...(o.resets === undefined ? {} : { resets: intOf(o.resets, where, `${field}.resets`) }),
  };
}

function txnSnapshotOf(value: unknown, where: string): TxnSnapshot {
  const o = sectionOf(value, where, 'transactions');
  return {
    v: 1,
    queues: arrayOf(o.queues, where, 'transactions.queues').map((item, i) => {
      const field = `transactions.queues[${i}]`;
      const queue = objectOf(item, where, field);
      return {
        h: stringOf(queue.h, where, `${field}.h`),
        q: intOf(queue.q, where, `${field}.q`, 0, 0xffff),
        c: rangesOf(queue.c, where, `${field}.c`),
        r: rangesOf(queue.r, where, `${field}.r`),
        d: rangesOf(queue.d, where, `${field}.d`),
        k: arrayOf(queue.k, where, `${field}.k`).map((tuple, j): CheckTuple => {
          const at = `${field}.k[${j}]`;
          const items = arrayOf(tuple, where, at);
          if (items.length !== 3) throw badField(where, at, 'a 3-item check');
          return [
            intOf(items[0], where, `${at}[0]`),
            intOf(items[1], where, `${at}[1]`),
            numberOf(items[2], where, `${at}[2]`),
          ];
        }),
      };
    }),
  };
}

function withdrawnSnapshotOf(value: unknown, where: string): WithdrawnSnapshot {
  const o = sectionOf(value, where, 'withdrawn');
  return {
    v: 1,
    queues: arrayOf(o.queues, where, 'withdrawn.queues').map((item, i) => {
      const field = `withdrawn.queues[${i}]`;
      const queue = objectOf(item, where, field);
      return {
        t: stringOf(queue.t, where, `${field}.t`),
        q: intOf(queue.q, where, `${field}.q`, 0, 0xffff),
        o: rangesOf(queue.o, where, `${field}.o`),
      };
    }),
  };
}
