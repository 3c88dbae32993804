// Withdrawn messages (publish fences): the journal's withdraw entries and the snapshot's
// `withdrawn` section are frozen by golden bytes and refused when malformed; the ledger keeps
// runs of offsets per store queue, forgets a dropped topic's, and a snapshot restores it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  decodeBrokerSnapshot,
  encodeBrokerSnapshot,
  type BrokerSnapshot,
} from '../../src/broker/broker-snapshot.js';
import {
  decodeLedgerEntry,
  encodeLedgerEntry,
  type JournalEntry,
} from '../../src/broker/ledger-entry-codec.js';
import { Withdrawals } from '../../src/broker/withdrawals.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/ledger-entry-withdraw-v1.json', import.meta.url), 'utf8'),
) as {
  entries: { value: JournalEntry; text: string }[];
  snapshot: { value: BrokerSnapshot; text: string };
};

t.test('every withdraw op and the snapshot section encode to their frozen bytes', async (t) => {
  t.equal(golden.entries.length, 2, 'one entry per op');
  for (const { value, text } of golden.entries) {
    t.equal(encodeLedgerEntry(value).toString(), text, `${value.op} bytes`);
    t.strictSame(decodeLedgerEntry(Buffer.from(text)), value, `${value.op} decodes`);
  }
  t.equal(encodeBrokerSnapshot(golden.snapshot.value).toString(), golden.snapshot.text);
  t.strictSame(decodeBrokerSnapshot(Buffer.from(golden.snapshot.text)), golden.snapshot.value);
  const none = { ...golden.snapshot.value, withdrawn: { v: 1 as const, queues: [] } };
  t.notMatch(encodeBrokerSnapshot(none).toString(), /withdrawn/, 'nothing withdrawn: no section');
});

t.test('malformed withdraw entries and sections are refused naming the field', async (t) => {
  const bad: [string, RegExp][] = [
    ['{"v":1,"op":"withdraw","topic":7,"queue":0,"offsets":[1]}', /topic/],
    ['{"v":1,"op":"withdraw","topic":"t","queue":70000,"offsets":[1]}', /queue/],
    ['{"v":1,"op":"withdraw","topic":"t","queue":0,"offsets":[-1]}', /offsets/],
    ['{"v":1,"op":"withdraw-drop"}', /topic/],
  ];
  for (const [entry, field] of bad)
    t.throws(() => decodeLedgerEntry(Buffer.from(entry)), { message: field }, entry);
  const text = golden.snapshot.text;
  t.throws(() => decodeBrokerSnapshot(Buffer.from(text.replace('"q":2', '"q":"2"'))), {
    message: /withdrawn\.queues\[0\]\.q/,
  });
  t.throws(
    () =>
      decodeBrokerSnapshot(Buffer.from(text.replace('"withdrawn":{"v":1', '"withdrawn":{"v":2'))),
    {
      message: /withdrawn version 2/,
    },
  );
});

t.test('the ledger: runs per queue, trim, drop, snapshot and restore', async (t) => {
  const w = new Withdrawals();
  t.equal(w.of('a', 0), undefined, 'nothing withdrawn: no lookup cost');
  w.apply({ op: 'withdraw', topic: 'a', queue: 0, offsets: [5, 6, 7, 9] });
  w.apply({ op: 'withdraw', topic: 'b', queue: 1, offsets: [1] });
  t.ok(w.has('a', 0, 6));
  t.notOk(w.has('a', 0, 8));
  t.notOk(w.has('a', 1, 6), 'per queue');
  t.same(w.snapshot(), {
    v: 1,
    queues: [
      {
        t: 'a',
        q: 0,
        o: [
          [5, 8],
          [9, 10],
        ],
      },
      { t: 'b', q: 1, o: [[1, 2]] },
    ],
  });
  const restored = new Withdrawals();
  restored.restore(w.snapshot());
  t.same(restored.snapshot(), w.snapshot());
  t.equal(w.trimTo('a', 0, 8, 100), false, 'nothing above the queue end');
  t.notOk(w.has('a', 0, 7), 'retention passed it');
  t.ok(w.has('a', 0, 9));
  w.apply({ op: 'withdraw', topic: 'a', queue: 0, offsets: [20, 21, 22, 30] });
  t.equal(w.trimTo('a', 0, 8, 21), true, 'a lost tail took 21 and up');
  t.ok(w.has('a', 0, 20));
  t.notOk(w.has('a', 0, 21), 'a message stored at 21 from now on is not withdrawn');
  t.notOk(w.has('a', 0, 30));
  t.ok(w.has('a', 0, 9));
  t.ok(w.hasTopic('b'));
  w.apply({ op: 'withdraw-drop', topic: 'b' });
  t.notOk(w.hasTopic('b'));
  t.same(w.queueList(), [['a', 0]]);
});
