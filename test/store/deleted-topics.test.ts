// The record of deleted topics: its bytes (golden), how a snapshot and a log not yet emptied
// combine, a line a crash cut short, and damage.
import t from 'tap';
import { decodeLog, decodeSnapshot, encodeDeletion } from '../../src/store/deleted-topics.js';

t.test('a deletion is one version-1 JSON line (golden bytes)', async (t) => {
  t.equal(
    encodeDeletion('t1/i1/orders', 4096).toString('utf8'),
    '{"v":1,"topic":"t1/i1/orders","at":4096}\n',
  );
});

t.test('snapshot and log: the later deletion of a topic wins, in any order', async (t) => {
  const deleted = new Map<string, number>();
  decodeSnapshot(Buffer.from('{"a":300,"b":10}'), deleted);
  // a log the snapshot already took in (a crash before it was emptied), then newer lines
  const log = Buffer.concat([
    encodeDeletion('a', 100),
    encodeDeletion('c', 50),
    encodeDeletion('b', 20),
  ]);
  t.equal(decodeLog(log, deleted), 3);
  t.same(Object.fromEntries(deleted), { a: 300, b: 20, c: 50 });
});

t.test('a last line a crash cut short is left out', async (t) => {
  const deleted = new Map<string, number>();
  const log = Buffer.concat([encodeDeletion('a', 1), Buffer.from('{"v":1,"topic":"b","a')]);
  t.equal(decodeLog(log, deleted), 1);
  t.same(Object.fromEntries(deleted), { a: 1 });
  t.equal(decodeLog(Buffer.from('{"v":1'), new Map()), 0);
});

t.test('damage is refused, not guessed around', async (t) => {
  const bad = [
    'not json\n',
    '{"v":2,"topic":"a","at":1}\n',
    '{"v":1,"topic":"a","at":-1}\n',
    '{"v":1,"topic":7,"at":1}\n',
    'null\n',
  ];
  for (const line of bad) {
    t.throws(() => decodeLog(Buffer.from(line), new Map()), /deleted-topics\.log: line 1/, line);
  }
  t.throws(() => decodeSnapshot(Buffer.from('[1]'), new Map()), /not an object/);
  t.throws(() => decodeSnapshot(Buffer.from('{"a":"x"}'), new Map()), /not a log offset/);
});
