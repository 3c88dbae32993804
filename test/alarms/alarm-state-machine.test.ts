import t from 'tap';
import { INITIAL_ALARM_STATE, stepAlarm, type AlarmStep } from '../../src/alarms/index.js';
import type { AlarmState } from '../../src/meta/index.js';

const rule = { threshold: 10, forSeconds: 60 };

/** Runs values at the given seconds; returns the transitions seen and the last state. */
function run(points: [seconds: number, value: number][], r = rule) {
  let state: AlarmState = INITIAL_ALARM_STATE;
  const transitions: string[] = [];
  for (const [seconds, value] of points) {
    const step: AlarmStep = stepAlarm(state, { value, nowMs: seconds * 1000 }, r);
    if (step.transition !== undefined) transitions.push(`${step.transition}@${seconds}`);
    state = step.state;
  }
  return { transitions, state };
}

t.test('fires once after the condition held forSeconds, resolves once', async (t) => {
  const { transitions, state } = run([
    [0, 5],
    [5, 11],
    [30, 20],
    [64, 30],
    [65, 40],
    [70, 50],
    [80, 3],
    [85, 2],
  ]);
  t.same(transitions, ['fired@65', 'resolved@80']);
  t.equal(state.state, 'ok');
  t.equal(state.seq, 2, 'firing and its resolution have consecutive numbers');
});

t.test('flapping inside forSeconds sends nothing', async (t) => {
  const points: [number, number][] = [];
  for (let s = 0; s < 600; s += 5) points.push([s, (s / 5) % 2 === 0 ? 100 : 0]);
  const { transitions } = run(points);
  t.same(transitions, []);
});

t.test('a pending condition that stops holding starts over', async (t) => {
  const { transitions } = run([
    [0, 11],
    [50, 11],
    [55, 0],
    [60, 11],
    [110, 11],
    [120, 11],
  ]);
  t.same(transitions, ['fired@120'], 'counted from 60, not from 0');
});

t.test(
  'forSeconds 0 fires at the first breach; equal to the threshold is not a breach',
  async (t) => {
    t.same(
      run(
        [
          [0, 10],
          [1, 10.5],
          [2, 10],
        ],
        { threshold: 10, forSeconds: 0 },
      ).transitions,
      ['fired@1', 'resolved@2'],
    );
  },
);

t.test(
  'states to store: entering and leaving pending, transitions; nothing otherwise',
  async (t) => {
    const pending = stepAlarm(INITIAL_ALARM_STATE, { value: 11, nowMs: 0 }, rule);
    t.equal(pending.changed, true);
    t.equal(pending.state.state, 'pending');
    t.equal(stepAlarm(pending.state, { value: 12, nowMs: 1000 }, rule).changed, false);
    t.equal(stepAlarm(INITIAL_ALARM_STATE, { value: 1, nowMs: 0 }, rule).changed, false);
    const firing: AlarmState = { state: 'firing', sinceMs: 0, seq: 7, value: 99 };
    t.equal(stepAlarm(firing, { value: 50, nowMs: 1000 }, rule).changed, false);
    t.match(stepAlarm(firing, { value: 0, nowMs: 1000 }, rule), {
      transition: 'resolved',
      state: { state: 'ok', seq: 8 },
    });
  },
);
