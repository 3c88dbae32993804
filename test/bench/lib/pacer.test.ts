import t from 'tap';
import {
  STAMP_BYTES,
  Schedule,
  nowMs,
  readScheduledAt,
  runOnSchedule,
  stampScheduledAt,
} from '../../../scripts/bench/lib/pacer.js';

t.test('message i is due at t0 + i/rate', async (t) => {
  const schedule = new Schedule(5000, 1000);
  t.equal(schedule.intervalMs, 0.2);
  t.equal(schedule.at(0), 1000);
  t.equal(schedule.at(5000), 2000, 'one second of messages later');
  t.equal(schedule.at(1), 1000.2);
  t.equal(new Schedule(3, 0).at(1), 1000 / 3);
});

t.test('a duration holds rate × duration messages, rounding a partial slot up', async (t) => {
  const schedule = new Schedule(5000, 0);
  t.equal(schedule.countWithin(10_000), 50_000);
  t.equal(schedule.countWithin(0), 0);
  t.equal(new Schedule(3, 0).countWithin(1000), 3);
  t.equal(new Schedule(2, 0).countWithin(750), 2, 'due at 0 and 500 ms');
});

t.test('dueBy counts the messages whose time has come, whatever was sent', async (t) => {
  const schedule = new Schedule(1000, 100);
  t.equal(schedule.dueBy(99.9), 0, 'before the start nothing is due');
  t.equal(schedule.dueBy(100), 1, 'the first message is due at the start');
  t.equal(schedule.dueBy(100.999), 1);
  t.equal(schedule.dueBy(101), 2);
  t.equal(schedule.dueBy(1100), 1001, 'a stall of a second leaves a thousand messages due');
  t.equal(new Schedule(3, 0).dueBy(1000), 4, 'no float drift at slot boundaries');
});

t.test('a rate must be a positive finite number', async (t) => {
  t.throws(() => new Schedule(0, 0), RangeError);
  t.throws(() => new Schedule(-1, 0), RangeError);
  t.throws(() => new Schedule(Number.POSITIVE_INFINITY, 0), RangeError);
  t.throws(() => new Schedule(Number.NaN, 0), RangeError);
});

t.test('a body carries its scheduled time in its first 8 bytes', async (t) => {
  const at = nowMs();
  const body = Buffer.alloc(1024);
  stampScheduledAt(body, at);
  t.equal(readScheduledAt(body), at);
  const view = new Uint8Array(body.buffer, body.byteOffset + 16, STAMP_BYTES);
  stampScheduledAt(view, 42.125);
  t.equal(readScheduledAt(view), 42.125, 'a view at an offset');
  t.equal(readScheduledAt(body), at, 'the rest of the buffer is untouched');
  t.throws(() => stampScheduledAt(Buffer.alloc(4), at), RangeError);
  t.throws(() => readScheduledAt(Buffer.alloc(7)), RangeError);
});

t.test('runOnSchedule sends each index once, in order, with its scheduled time', async (t) => {
  const sends: [number, number][] = [];
  const result = await runOnSchedule({
    ratePerSec: 2000,
    durationMs: 50,
    send: (index, scheduledMs) => {
      sends.push([index, scheduledMs]);
    },
  });
  t.equal(result.sent, 100);
  t.same(
    sends.map(([index]) => index),
    Array.from({ length: 100 }, (_, i) => i),
  );
  const step = sends[1][1] - sends[0][1];
  t.ok(Math.abs(step - 0.5) < 1e-6, 'scheduled times step by 1/rate');
  t.equal(result.sendLag.count, 100);
  t.ok(result.sendLag.p50Ms >= 0, 'never sent before its time');
});

t.test(
  'a send that returns a promise holds back the next one, which is then sent late',
  async (t) => {
    let inFlight = 0;
    let most = 0;
    const result = await runOnSchedule({
      ratePerSec: 5000,
      durationMs: 10,
      maxBurst: 4,
      send: async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
      },
    });
    t.equal(result.sent, 50);
    t.equal(most, 1, 'sends never overlap');
  },
);
