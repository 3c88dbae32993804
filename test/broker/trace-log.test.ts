// Trace records: golden bytes freeze the record body v2 (runs) and v1 (events, still read), a bare
// array (written before versions) reads as v1, and a future version or a bad event is refused with an
// error naming the record; events of a message come back oldest first from the store.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  decodeTraceRecord,
  encodeTraceRecord,
  TRACE_KEY_SPAN,
  traceBlockKey,
  traceKeys,
  TraceLog,
  traceTopic,
  type TracedEvent,
  type TraceRun,
} from '../../src/broker/trace-log.js';
import { MessageFlags } from '../../src/store/index.js';
import { openTestBroker } from '../helpers/broker.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/trace-record-v1.json', import.meta.url), 'utf8'),
) as { events: TracedEvent[]; text: string };
const goldenV2 = JSON.parse(
  readFileSync(new URL('../fixtures/trace-record-v2.json', import.meta.url), 'utf8'),
) as { runs: TraceRun[]; events: TracedEvent[]; text: string };

t.test('a record body encodes to its frozen bytes and decodes back', async (t) => {
  t.equal(encodeTraceRecord(goldenV2.runs).toString(), goldenV2.text);
  t.strictSame(decodeTraceRecord(Buffer.from(goldenV2.text)), goldenV2.events);
  t.equal(goldenV2.events.length, 8, 'a run of two offsets is two events');
});

t.test('a version 1 body (events, written before runs) still decodes', async (t) => {
  t.strictSame(decodeTraceRecord(Buffer.from(golden.text)), golden.events);
});

t.test('a bare array of events (before versions) reads as version 1', async (t) => {
  t.strictSame(decodeTraceRecord(Buffer.from(JSON.stringify(golden.events))), golden.events);
});

t.test('a future version and bad events are refused naming the record', async (t) => {
  const where = 'trace record at log offset 42';
  t.throws(() => decodeTraceRecord(Buffer.from('{"v":3,"runs":[]}'), where), {
    code: 'UnsupportedFormat',
    message: /^trace record at log offset 42: format version 3/,
  });
  const cases: [string, string, RegExp][] = [
    ['not json', '[{', /not JSON/],
    ['a string', '"x"', /document is not an object/],
    ['no events', '{"v":1}', /events is not an array/],
    ['a bad type', '[{"position":"a:0:0","time":1,"type":"EXPLODED"}]', /events\[0\]\.type/],
    ['no position', '[{"time":1,"type":"ACKED"}]', /events\[0\]\.position/],
    ['a string time', '[{"position":"a:0:0","time":"1","type":"ACKED"}]', /events\[0\]\.time/],
    [
      'a bad attempt',
      '[{"position":"a:0:0","time":1,"type":"ACKED","deliveryAttempt":-1}]',
      /deliveryAttempt/,
    ],
    ['a bad group', '[{"position":"a:0:0","time":1,"type":"ACKED","group":1}]', /group/],
    [
      'a bad consumer',
      '[{"position":"a:0:0","time":1,"type":"ACKED","consumerId":1}]',
      /consumerId/,
    ],
    ['a bad queue', '[{"position":"a:0:0","time":1,"type":"ACKED","queueId":1.5}]', /queueId/],
    ['v2 without runs', '{"v":2}', /runs is not an array/],
    [
      'a run without at',
      '{"v":2,"runs":[{"time":1,"type":"ACKED","offsets":[1]}]}',
      /runs\[0\]\.at/,
    ],
    [
      'a run with a bad offset',
      '{"v":2,"runs":[{"time":1,"type":"ACKED","at":"a:0","offsets":[-1]}]}',
      /runs\[0\]\.offsets\[0\]/,
    ],
    [
      'a run with a bad type',
      '{"v":2,"runs":[{"time":1,"type":"X","at":"a:0","offsets":[]}]}',
      /runs\[0\]\.type/,
    ],
  ];
  for (const [what, text, message] of cases) {
    t.throws(
      () => decodeTraceRecord(Buffer.from(text), where),
      { code: 'CorruptIndex', message: new RegExp(`^${where}: .*${message.source}`) },
      what,
    );
  }
  t.strictSame(
    decodeTraceRecord(
      Buffer.from('[{"position":"a:0:0","time":1,"type":"PUBLISHED","queueId":3}]'),
    ),
    [{ position: 'a:0:0', time: 1, type: 'PUBLISHED', queueId: 3 }],
  );
});

t.test('events are read back per message, and a future record names its log offset', async (t) => {
  const broker = await openTestBroker(t, { trace: false });
  const trace = new TraceLog(broker.store, { lingerMs: 1 });
  trace.record('t1', 'i1', golden.events);
  await trace.flush();
  const events = await trace.events('t1', 'i1', ['orders:1:7'], -1);
  t.same(
    events.map((e) => e.type),
    ['RETRIED', 'DELIVERED', 'ACKED'],
  );
  t.notOk('position' in events[0], 'the position is the key, not part of the event');
  const [future] = await broker.store.append([
    {
      topic: traceTopic('t1', 'i1'),
      queueId: 0,
      keys: ['orders:1:7'],
      body: Buffer.from('{"v":9,"events":[]}'),
      bornTimestampMs: Date.now(),
      flags: MessageFlags.SYSTEM,
    },
  ]);
  await t.rejects(trace.events('t1', 'i1', ['orders:1:7'], -1), {
    code: 'UnsupportedFormat',
    message: new RegExp(`trace record at log offset ${future.logOffset}: format version 9`),
  });
});

t.test('a record is keyed by the blocks its runs name, not by every position', async (t) => {
  const offsets = Array.from({ length: 32 }, (_, i) => 50 + i); // spans blocks 0 and 1
  const runs: TraceRun[] = [
    { type: 'DELIVERED', time: 1, group: 'g', at: 'orders:1', offsets },
    { type: 'ACKED', time: 2, group: 'g', at: 'orders:1', offsets: [3, 200] },
    { type: 'DELIVERED', time: 3, group: 'g', at: 'orders:2', offsets: [5] },
  ];
  t.equal(TRACE_KEY_SPAN, 64);
  t.same(traceKeys(runs), ['orders:1#0', 'orders:1#1', 'orders:1#3', 'orders:2#0']);
  t.equal(traceBlockKey('orders:1', 127), 'orders:1#1');
});

t.test(
  'events are found under block keys and under the per-position keys of older records',
  async (t) => {
    const broker = await openTestBroker(t, { trace: false });
    const trace = new TraceLog(broker.store, { lingerMs: 1 });
    const topic = traceTopic('t1', 'i1');
    // a record written before block keys: one key per position
    await broker.store.append([
      {
        topic,
        queueId: 0,
        keys: ['orders:1:7', 'orders:1:8'],
        body: encodeTraceRecord([
          {
            type: 'DELIVERED',
            time: 10,
            group: 'g',
            deliveryAttempt: 1,
            at: 'orders:1',
            offsets: [7, 8],
          },
        ]),
        bornTimestampMs: Date.now(),
        flags: MessageFlags.SYSTEM,
      },
    ]);
    // newer records under block keys; the block's other messages are not this one's events
    trace.recordRuns('t1', 'i1', [
      { type: 'ACKED', time: 20, group: 'g', at: 'orders:1', offsets: [8, 7, 9] },
      { type: 'ACKED', time: 21, group: 'g', at: 'orders:2', offsets: [7] },
    ]);
    await trace.flush();
    trace.recordRuns('t1', 'i1', [
      { type: 'ACKED', time: 30, group: 'h', at: 'orders:1', offsets: [7] },
    ]);
    await trace.flush();
    const events = await trace.events('t1', 'i1', ['orders:1:7'], -1);
    t.same(
      events.map((e) => [e.type, e.time, e.group]),
      [
        ['DELIVERED', 10, 'g'],
        ['ACKED', 20, 'g'],
        ['ACKED', 30, 'h'],
      ],
    );
    t.same(
      (await trace.events('t1', 'i1', ['orders:1:9'], -1)).map((e) => e.time),
      [20],
      'a message with no older record',
    );
    t.same(await trace.events('t1', 'i1', ['orders:1:64'], -1), [], 'the next block holds nothing');
  },
);

t.test('a message keeps all its events when its block has hundreds of records', async (t) => {
  const broker = await openTestBroker(t, { trace: false });
  const trace = new TraceLog(broker.store, { lingerMs: 1 });
  // five groups receive and ack the block's 64 messages one at a time: 640 records name the
  // block; message 0's own events are in the oldest ones
  let time = 0;
  for (const group of ['g1', 'g2', 'g3', 'g4', 'g5']) {
    for (let offset = 0; offset < 64; offset++) {
      for (const type of ['DELIVERED', 'ACKED'] as const) {
        trace.recordRuns('t1', 'i1', [
          { type, time: ++time, group, at: 'orders:0', offsets: [offset] },
        ]);
        await trace.flush();
      }
    }
  }
  const events = await trace.events('t1', 'i1', ['orders:0:0'], -1);
  t.same(
    events.map((e) => `${e.type} ${e.group}`),
    ['g1', 'g2', 'g3', 'g4', 'g5'].flatMap((g) => [`DELIVERED ${g}`, `ACKED ${g}`]),
    'every group, in order',
  );
});
