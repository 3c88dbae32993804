import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  decodeScheduleMark,
  encodeScheduleMark,
  isScheduleTopic,
  scheduleKey,
  scheduleTopic,
  targetStoreTopic,
  type ScheduleMark,
} from '../../src/broker/schedule-records.js';
import { WharfError } from '../../src/errors.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/schedule-mark-v1.json', import.meta.url), 'utf8'),
) as { marks: { value: ScheduleMark; text: string }[] };

t.test('schedule marks encode to their golden bytes and decode back', async (t) => {
  for (const { value, text } of golden.marks) {
    t.equal(encodeScheduleMark(value).toString(), text, value.op);
    t.same(decodeScheduleMark(Buffer.from(text)), value);
  }
});

t.test('a damaged or newer mark is refused with a code, never cast', async (t) => {
  const bad = [
    '{"v":1,"op":"drop","logOffsets":[],"checkpoint":0}',
    '{"v":1,"op":"done","logOffsets":[-1],"checkpoint":0}',
    '{"v":1,"op":"done","logOffsets":[1]}',
    'not json',
  ];
  for (const text of bad) {
    t.throws(() => decodeScheduleMark(Buffer.from(text)), { code: 'CorruptIndex' }, text);
  }
  const newer = () => decodeScheduleMark(Buffer.from('{"v":2,"op":"done"}'));
  t.throws(newer, WharfError);
  t.throws(newer, { code: 'UnsupportedFormat' });
});

t.test('schedule topic names stay inside their instance', async (t) => {
  const name = scheduleTopic('tn_a', 'in_b');
  t.equal(name, 'tn_a/in_b/%SCHEDULE%');
  t.ok(isScheduleTopic(name));
  t.notOk(isScheduleTopic('tn_a/in_b/orders'));
  t.notOk(isScheduleTopic('tn_a/in_b/%RETRY%/g/%SCHEDULE%'));
  t.equal(targetStoreTopic(name, 'orders'), 'tn_a/in_b/orders');
  t.equal(scheduleKey(255), '\u0001sched:ff');
});
