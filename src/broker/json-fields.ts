// Reading parsed JSON of a durable or shared broker format field by field: each reader checks a
// type and range and throws a WharfError naming the source (`where`: which file, entry or key)
// and the field, so a damaged or foreign document is never cast into a shape it does not have.
import { WharfError } from '../errors.js';

/** The object parsed from `text`; a syntax error or a non-object is CorruptIndex naming `where`. */
export function parseJsonObject(text: string, where: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new WharfError('CorruptIndex', `${where}: not JSON`, { cause: error });
  }
  return objectOf(parsed, where, 'document');
}

export function badField(where: string, field: string, expected: string): WharfError {
  return new WharfError('CorruptIndex', `${where}: ${field} is not ${expected}`, {
    details: { where, field },
  });
}

/** The version a document names; one without `v` (written before versions) is version 1. */
export function versionOf(
  object: Record<string, unknown>,
  where: string,
  supported: number,
): number {
  const v = object.v;
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw badField(where, 'v', 'a version');
  if (v > supported) {
    throw new WharfError(
      'UnsupportedFormat',
      `${where}: format version ${v} is newer than this broker reads (${supported})`,
      { details: { where, version: v } },
    );
  }
  return v;
}

export function objectOf(value: unknown, where: string, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badField(where, field, 'an object');
  return value as Record<string, unknown>;
}

export function arrayOf(value: unknown, where: string, field: string): unknown[] {
  if (!Array.isArray(value)) throw badField(where, field, 'an array');
  return value;
}

export function stringOf(value: unknown, where: string, field: string): string {
  if (typeof value !== 'string') throw badField(where, field, 'a string');
  return value;
}

/** A safe integer in [min, max]. */
export function intOf(
  value: unknown,
  where: string,
  field: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    throw badField(where, field, `an integer in [${min}, ${max}]`);
  return value;
}

/** A finite number (times, sizes that need not be integers). */
export function numberOf(value: unknown, where: string, field: string, min = -Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
    throw badField(where, field, min === -Infinity ? 'a finite number' : `a number ≥ ${min}`);
  return value;
}

export function intsOf(value: unknown, where: string, field: string): number[] {
  return arrayOf(value, where, field).map((item, i) => intOf(item, where, `${field}[${i}]`));
}

/** [start, end) pairs of offsets, start ≤ end. */
export function rangesOf(value: unknown, where: string, field: string): [number, number][] {
  return arrayOf(value, where, field).map((item, i) => {
    const pair = arrayOf(item, where, `${field}[${i}]`);
    if (pair.length !== 2) throw badField(where, `${field}[${i}]`, 'a [start, end] pair');
    const start = intOf(pair[0], where, `${field}[${i}][0]`);
    const end = intOf(pair[1], where, `${field}[${i}][1]`, start);
    return [start, end];
  });
}

export function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  where: string,
  field: string,
): T {
  const found = allowed.find((item) => item === value);
  if (found === undefined) throw badField(where, field, `one of ${allowed.join(', ')}`);
  return found;
}
