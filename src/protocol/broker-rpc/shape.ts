// Shapes: checks that turn a decoded JSON value into a typed one or throw CorruptPayload — the
// JSON payloads of the rare operations are validated field by field, never cast. Buffers inside
// a JSON payload travel as raw bytes after it (`{"$blob": n}` in the JSON); the `buffer` shape
// resolves them. Objects keep keys their shape does not name (a newer peer's optional fields
// pass through an older hop) but only the named ones are typed.
import { CorruptPayload } from './payload.js';

export interface ShapeContext {
  blobs: readonly Buffer[];
}

export type Shape<T> = (value: unknown, path: string, context: ShapeContext) => T;

export function fail(path: string, expected: string): never {
  throw new CorruptPayload(`${path || 'payload'}: expected ${expected}`);
}

export const string: Shape<string> = (value, path) =>
  typeof value === 'string' ? value : fail(path, 'a string');

export const number: Shape<number> = (value, path) =>
  typeof value === 'number' && Number.isFinite(value) ? value : fail(path, 'a number');

export const boolean: Shape<boolean> = (value, path) =>
  typeof value === 'boolean' ? value : fail(path, 'a boolean');

export const buffer: Shape<Buffer> = (value, path, context) => {
  if (typeof value === 'object' && value !== null && '$blob' in value) {
    const index = value.$blob;
    if (typeof index === 'number' && Number.isInteger(index) && context.blobs[index]) {
      return context.blobs[index];
    }
  }
  return fail(path, 'a blob reference');
};

/** A JSON `null`: the answer of the operations that return nothing. */
export const nothing: Shape<undefined> = (value, path) =>
  value === null ? undefined : fail(path, 'null');

export function literal<const T extends readonly string[]>(...values: T): Shape<T[number]> {
  const allowed: readonly string[] = values;
  const isAllowed = (value: unknown): value is T[number] =>
    typeof value === 'string' && allowed.includes(value);
  return (value, path) => (isAllowed(value) ? value : fail(path, values.join(' | ')));
}

export function nullable<T>(shape: Shape<T>): Shape<T | null> {
  return (value, path, context) => (value === null ? null : shape(value, path, context));
}

export function array<T>(shape: Shape<T>): Shape<T[]> {
  return (value, path, context) =>
    Array.isArray(value)
      ? value.map((item: unknown, i) => shape(item, `${path}[${i}]`, context))
      : fail(path, 'an array');
}

export function record<T>(shape: Shape<T>): Shape<Record<string, T>> {
  return (value, path, context) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return fail(path, 'an object');
    }
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, shape(item, `${path}.${key}`, context)]),
    );
  };
}

export function union<A, B>(first: Shape<A>, second: Shape<B>): Shape<A | B> {
  return (value, path, context) => {
    try {
      return first(value, path, context);
    } catch {
      return second(value, path, context);
    }
  };
}

/** A key that may be absent (or null on the wire: JSON has no undefined). */
export function optional<T>(shape: Shape<T>): Shape<T | undefined> {
  return (value, path, context) =>
    value === undefined || value === null ? undefined : shape(value, path, context);
}

type Fields = Record<string, Shape<unknown>>;
type Typed<F extends Fields> = { [K in keyof F]: F[K] extends Shape<infer T> ? T : never };

export function object<F extends Fields>(fields: F): Shape<Typed<F>> {
  return (value, path, context) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return fail(path, 'an object');
    }
    const out: Record<string, unknown> = { ...value };
    for (const [key, shape] of Object.entries(fields)) {
      const checked = shape((value as Record<string, unknown>)[key], `${path}.${key}`, context);
      if (checked === undefined) delete out[key];
      else out[key] = checked;
    }
    return out as Typed<F>; // every named key was checked by its shape above
  };
}

/** JSON with every Buffer moved out: `{ json, blobs }`, the inverse of a shape's `buffer`. */
export function extractBlobs(value: unknown): { json: unknown; blobs: Buffer[] } {
  const blobs: Buffer[] = [];
  const walk = (item: unknown): unknown => {
    if (Buffer.isBuffer(item)) {
      blobs.push(item);
      return { $blob: blobs.length - 1 };
    }
    if (Array.isArray(item)) return item.map(walk);
    if (typeof item === 'object' && item !== null) {
      return Object.fromEntries(Object.entries(item).map(([key, v]) => [key, walk(v)]));
    }
    return item;
  };
  return { json: walk(value), blobs };
}
