// Ledger entry codec: golden bytes freeze entry v1 (one per op), decode(encode(x)) = x, entries
// written before versions (no `v`) read as v1, and a future version or any bad field is refused
// with an error naming the entry.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { LedgerEntry } from '../../src/broker/consumer-ledger.js';
import { decodeLedgerEntry, encodeLedgerEntry } from '../../src/broker/ledger-entry-codec.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/ledger-entry-v1.json', import.meta.url), 'utf8'),
) as { entries: { value: LedgerEntry; text: string }[] };

t.test('every op encodes to its frozen bytes and decodes back', async (t) => {
  t.equal(golden.entries.length, 13, 'one entry per op, and a vis returning a delivery unseen');
  for (const { value, text } of golden.entries) {
    t.equal(encodeLedgerEntry(value).toString(), text, `${value.op} bytes`);
    t.same(decodeLedgerEntry(Buffer.from(text)), value, `${value.op} decodes`);
    t.strictSame(decodeLedgerEntry(encodeLedgerEntry(value)), value, `${value.op} round trip`);
  }
});

t.test('an entry written without a version reads as version 1', async (t) => {
  for (const { value } of golden.entries) {
    const legacy = Buffer.from(JSON.stringify(value));
    t.strictSame(decodeLedgerEntry(legacy), value, value.op);
  }
});

t.test('a future version is refused naming the entry', async (t) => {
  const text = golden.entries[0].text.replace('"v":1', '"v":2');
  t.throws(() => decodeLedgerEntry(Buffer.from(text), 'journal entry 3 after the snapshot'), {
    code: 'UnsupportedFormat',
    message: /journal entry 3 after the snapshot.*version 2/,
  });
});

t.test('bad entries are refused with the entry and field named', async (t) => {
  const sub = 'g\u0000t\u00000';
  const bad: [string, unknown, RegExp][] = [
    ['not json', '{"op":', /not JSON/],
    ['an array', [1], /document is not an object/],
    ['a bad version', { v: 'one', op: 'dropTopic', topic: 't' }, /v is not a version/],
    ['an unknown op', { v: 1, op: 'explode' }, /unknown op "explode"/],
    ['no op', { v: 1 }, /op is not a string/],
    ['a bad sub', { v: 1, op: 'start', sub: 'g', queue: 0, offset: 0 }, /sub is not/],
    [
      'a bad slot in sub',
      { v: 1, op: 'start', sub: 'g\u0000t\u0000x', queue: 0, offset: 0 },
      /sub/,
    ],
    ['a negative offset', { v: 1, op: 'reset', sub, queue: 0, offset: -1 }, /offset is not/],
    ['a queue over 0xffff', { v: 1, op: 'start', sub, queue: 65536, offset: 0 }, /queue is not/],
    [
      'a short delivery',
      { v: 1, op: 'deliver', sub, queue: 0, d: [[1, 1, 1, 1]], pull: 2, from: 0 },
      /d\[0\] is not a 5-item delivery/,
    ],
    [
      'a string time',
      { v: 1, op: 'vis', sub, queue: 0, offset: 1, nextVisibleMs: '1', redeliverAtMs: 1 },
      /nextVisibleMs is not a finite number/,
    ],
    ['fractional offsets', { v: 1, op: 'complete', sub, queue: 0, offsets: [1.5] }, /offsets\[0\]/],
    [
      'a numeric consumer id',
      { v: 1, op: 'slot', group: 'g', consumerId: 1, slot: 1 },
      /consumerId/,
    ],
    ['dlq offsets not a list', { v: 1, op: 'dlqDone', group: 'g', offsets: 3 }, /offsets is not/],
    ['a numeric group', { v: 1, op: 'dropGroup', group: 3 }, /group is not/],
    [
      'a bad message type',
      {
        ...golden.entries[7].value,
        v: 1,
        topic: { ...(golden.entries[7].value as { topic: object }).topic, messageType: 'X' },
      },
      /topic\.messageType is not one of/,
    ],
    [
      'a bad retry policy',
      {
        ...golden.entries[7].value,
        group: {
          ...(golden.entries[7].value as { group: object }).group,
          retryPolicy: { backoffSeconds: [-1] },
        },
      },
      /group\.retryPolicy\.backoffSeconds\[0\]/,
    ],
    [
      'no exponential rule',
      {
        ...golden.entries[7].value,
        group: { ...(golden.entries[7].value as { group: object }).group, retryPolicy: {} },
      },
      /group\.retryPolicy\.exponential is not an object/,
    ],
  ];
  for (const [what, value, message] of bad) {
    const data = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
    t.throws(
      () => decodeLedgerEntry(data, 'journal entry 5 after the snapshot'),
      {
        code: 'CorruptIndex',
        message: new RegExp(`^journal entry 5 after the snapshot: .*${message.source}`),
      },
      what,
    );
  }
});

t.test('a conf entry keeps the descriptors’ optional fields only when present', async (t) => {
  const conf = golden.entries[7].value as LedgerEntry & { op: 'conf' };
  const { retryPolicy: _r, incarnation: _i, ...plain } = conf.group;
  const entry: LedgerEntry = { op: 'conf', topic: conf.topic, group: plain };
  const decoded = decodeLedgerEntry(encodeLedgerEntry(entry));
  t.strictSame(decoded, entry);
  t.notOk('retryPolicy' in (decoded as typeof conf).group);
  const levels: LedgerEntry = {
    op: 'conf',
    topic: conf.topic,
    group: { ...plain, retryPolicy: { backoffSeconds: [0, 5] } },
  };
  t.strictSame(decodeLedgerEntry(encodeLedgerEntry(levels)), levels);
});
