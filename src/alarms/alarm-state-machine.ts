// The evaluation of one alarm as a pure state machine: ok → pending (the condition holds) →
// firing (it has held for forSeconds: notify once) → ok (it no longer holds: resolve once). A
// condition that stops holding while pending goes back to ok silently, so flapping inside
// forSeconds sends nothing. A rule whose value cannot be read keeps its state.
import type { AlarmState } from '../meta/index.js';

/** The state of an alarm never evaluated. */
export const INITIAL_ALARM_STATE: AlarmState = { state: 'ok', sinceMs: 0, seq: 0, value: 0 };

export interface AlarmObservation {
  /** The metric's value now. */
  value: number;
  nowMs: number;
}

export interface AlarmRule {
  threshold: number;
  forSeconds: number;
}

export interface AlarmStep {
  state: AlarmState;
  /** A notification to send (its number is state.seq), or none. */
  transition?: 'fired' | 'resolved';
  /** Whether the state must be stored (a transition, or entering/leaving pending). */
  changed: boolean;
}

/** The condition: the value is above the threshold. */
export function breaches(value: number, rule: AlarmRule): boolean {
  return value > rule.threshold;
}

export function stepAlarm(
  previous: AlarmState,
  observation: AlarmObservation,
  rule: AlarmRule,
): AlarmStep {
  const { value, nowMs } = observation;
  const holds = breaches(value, rule);
  const forMs = rule.forSeconds * 1000;
  switch (previous.state) {
    case 'ok': {
      if (!holds) return { state: previous, changed: false };
      if (forMs === 0) return fire(previous, value, nowMs);
      return { state: { ...previous, state: 'pending', sinceMs: nowMs, value }, changed: true };
    }
    case 'pending': {
      if (!holds)
        return { state: { ...previous, state: 'ok', sinceMs: nowMs, value }, changed: true };
      if (nowMs - previous.sinceMs >= forMs) return fire(previous, value, nowMs);
      return { state: previous, changed: false };
    }
    case 'firing': {
      if (holds) return { state: previous, changed: false };
      return {
        state: { state: 'ok', sinceMs: nowMs, seq: previous.seq + 1, value },
        transition: 'resolved',
        changed: true,
      };
    }
  }
}

function fire(previous: AlarmState, value: number, nowMs: number): AlarmStep {
  return {
    state: { state: 'firing', sinceMs: nowMs, seq: previous.seq + 1, value },
    transition: 'fired',
    changed: true,
  };
}
