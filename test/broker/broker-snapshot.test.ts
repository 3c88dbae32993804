// Broker snapshot codec: golden bytes freeze snapshot v1, decode(encode(x)) = x, a snapshot
// written before versions (no outer `v`) reads as v1, and a future version or any bad field is
// refused with an error naming the snapshot and the field.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  decodeBrokerSnapshot,
  encodeBrokerSnapshot,
  type BrokerSnapshot,
} from '../../src/broker/broker-snapshot.js';
import { ConsumerLedger } from '../../src/broker/consumer-ledger.js';
import { QueueCursor } from '../../src/broker/queue-cursor.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/broker-snapshot-v1.json', import.meta.url), 'utf8'),
) as { value: BrokerSnapshot; text: string };

t.test('a snapshot encodes to its frozen bytes and decodes back', async (t) => {
  t.equal(encodeBrokerSnapshot(golden.value).toString(), golden.text);
  t.strictSame(decodeBrokerSnapshot(Buffer.from(golden.text)), golden.value);
});

t.test('a snapshot written without a version reads as version 1', async (t) => {
  const legacy = Buffer.from(
    JSON.stringify({ ledger: golden.value.ledger, bytesIn: golden.value.bytesIn }),
  );
  t.strictSame(decodeBrokerSnapshot(legacy), golden.value);
  const noConfs = { ...golden.value.ledger };
  delete noConfs.confs;
  const older = decodeBrokerSnapshot(Buffer.from(JSON.stringify({ ledger: noConfs, bytesIn: [] })));
  t.notOk('confs' in older.ledger, 'a snapshot from before confs has none');
});

t.test('dead letters being re-sent round-trip; a snapshot from before them has none', async (t) => {
  t.notOk('dlqResending' in golden.value.ledger, 'none in the golden snapshot');
  const value: BrokerSnapshot = {
    ...golden.value,
    ledger: { ...golden.value.ledger, dlqResending: [['tn_golden/in_golden/workers', [4, 6]]] },
  };
  t.strictSame(decodeBrokerSnapshot(encodeBrokerSnapshot(value)), value);
  const bad = encodeBrokerSnapshot(value).toString().replace('[4,6]', '[4,-6]');
  t.throws(() => decodeBrokerSnapshot(Buffer.from(bad)), {
    code: 'CorruptIndex',
    message: /ledger\.dlqResending\[0\]\[1\]/,
  });
});

t.test('an older snapshot’s null redelivery time reads as due now', async (t) => {
  const text = golden.text.replace('1700000030123,1700000031123', '1700000030123,null');
  const decoded = decodeBrokerSnapshot(Buffer.from(text));
  t.same(decoded.ledger.subs[0].q[0][1].inflight[0], [6, 2, 1700000000123, 1700000030123, 0]);
});

t.test('a future version is refused naming the snapshot', async (t) => {
  t.throws(() => decodeBrokerSnapshot(Buffer.from(golden.text.replace('{"v":1,', '{"v":2,'))), {
    code: 'UnsupportedFormat',
    message: /consumer snapshot \(journal\/snapshot\): format version 2/,
  });
  t.throws(
    () =>
      decodeBrokerSnapshot(
        Buffer.from(golden.text.replace('"ledger":{"v":1,', '"ledger":{"v":3,')),
      ),
    { code: 'UnsupportedFormat', message: /ledger version 3/ },
  );
});

t.test('a ledger with owed offsets is version 2, which an older broker refuses', async (t) => {
  const ledger = new ConsumerLedger();
  const cursor = QueueCursor.fromSnapshot({
    ackOffset: 0,
    pullOffset: 10,
    inflight: [],
    done: [],
    owed: [[0, 10]],
  });
  ledger.subscription('g', 't', 0).cursors.set(0, cursor);
  const owing = encodeBrokerSnapshot({ ledger: ledger.snapshot(), bytesIn: [] }).toString();
  t.match(owing, /"ledger":\{"v":2,/);
  const decoded = decodeBrokerSnapshot(Buffer.from(owing));
  t.same(decoded.ledger.subs[0].q[0][1].owed, [[0, 10]]);
  cursor.admitOwed(10);
  const paid = encodeBrokerSnapshot({ ledger: ledger.snapshot(), bytesIn: [] }).toString();
  t.match(paid, /"ledger":\{"v":1,/, 'version 1 again once nothing is owed');
});

t.test('bad snapshots are refused with the field named', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not json', golden.text.slice(0, 40), /not JSON/],
    ['a negative byte count', golden.text.replace(',123456]', ',-1]'), /bytesIn\[0\]\[1\]/],
    [
      'a bad pair',
      golden.text.replace('"bytesIn":[[', '"bytesIn":[[1,'),
      /bytesIn\[0\] is not a pair/,
    ],
    ['a bad slot', golden.text.replace('"s":1,', '"s":"1",'), /ledger\.subs\[0\]\.s/],
    ['a bad ack offset', golden.text.replace('"ackOffset":5', '"ackOffset":5.5'), /ackOffset/],
    ['a short delivery', golden.text.replace('[[6,2,', '[[2,'), /inflight\[0\] is not a 5-item/],
    ['a reversed range', golden.text.replace('[[7,9]', '[[9,7]'), /done\[0\]\[1\]/],
    ['a bad queue id', golden.text.replace('[65535,', '[65536,'), /q\[1\]\[0\]/],
    ['a bad consumer id', golden.text.replace('"consumer-a"', '7'), /slots\[0\]\[1\]\[0\]\[0\]/],
    ['bad dlq ranges', golden.text.replace('[[0,2],[4,5]]', '3'), /dlq\[0\]\[1\] is not an array/],
    [
      'a bad conf',
      golden.text.replace('"queueCount":4', '"queueCount":0'),
      /confs\[0\]\.topic\.queueCount/,
    ],
    ['no subs', golden.text.replace('"subs":', '"subz":'), /ledger\.subs is not an array/],
    ['no ledger', golden.text.replace('"ledger":', '"ledgers":'), /ledger is not an object/],
  ];
  for (const [what, text, message] of cases) {
    t.throws(
      () => decodeBrokerSnapshot(Buffer.from(text)),
      {
        code: 'CorruptIndex',
        message: new RegExp(`^consumer snapshot \\(journal/snapshot\\): .*${message.source}`),
      },
      what,
    );
  }
});
