// What the event loop and a seal worker thread (seal-worker.ts) pass each other: a publish's
// bodies (to seal) or a receive's envelopes (to open) packed back to back in one buffer that is
// transferred, not copied, with their lengths; the answer is packed the same way, an envelope
// that does not open answering length -1, and a seal's answer also carries each body's MD5 (the
// publish answer's bodyMd5), computed there rather than on the event loop. Pure: packing, sealing or opening a packed batch, and
// checking a message that crossed threads before anything trusts it.
import { BODY_MD5_PATTERN, bodyMd5 } from './body-md5.js';
import { SEAL_OVERHEAD_BYTES, openBody, sealBodyInto } from './body-seal.js';

export type CipherOp = 'seal' | 'open';

/** Sent to a worker: seal or open the `lengths.length` items packed in `packed`. */
export interface SealRequest {
  id: number;
  op: CipherOp;
  key: Uint8Array;
  aad: Uint8Array;
  packed: ArrayBuffer;
  lengths: number[];
}

/** A worker's answer: the results packed in `packed` (`lengths` each; -1: an envelope that does
 *  not open) with, for a seal, the MD5 of each body (`digests`); or why it could not. */
export type SealAnswer =
  | { id: number; packed: ArrayBuffer; lengths: number[]; digests?: string[] }
  | { id: number; error: string };

/** Every request the event loop asked of one thread in one turn, in one message (a postMessage
 *  and its wake-up cost the loop more than the cipher work of a small batch; a busy loop asks
 *  5–15 batches a turn), with their buffers transferred together. */
export interface SealRequests {
  requests: SealRequest[];
}

/** The answers to one SealRequests message, in one message. */
export interface SealAnswers {
  answers: SealAnswer[];
}

/** What a worker posts once its module is loaded and it listens. */
export const SEAL_WORKER_READY = 'seal-worker-ready';

/** Marks an envelope that did not open in an answer's lengths. */
export const NOT_OPENED = -1;

/** The bodies in one buffer of their own (its ArrayBuffer is transferred to the worker, so it
 *  must not be a slice of Node's shared pool). */
export function packBodies(bodies: readonly Buffer[]): { packed: Buffer; lengths: number[] } {
  let total = 0;
  for (const body of bodies) total += body.length;
  const packed = Buffer.allocUnsafeSlow(total);
  const lengths: number[] = [];
  let at = 0;
  for (const body of bodies) {
    body.copy(packed, at);
    at += body.length;
    lengths.push(body.length);
  }
  return { packed, lengths };
}

/** The buffers packed in `packed`, as views (no copy); null where the length is NOT_OPENED. */
export function unpack(packed: Buffer, lengths: readonly number[]): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  let at = 0;
  for (const length of lengths) {
    if (length === NOT_OPENED) {
      out.push(null);
      continue;
    }
    out.push(packed.subarray(at, at + length));
    at += length;
  }
  return out;
}

/** Seals every packed body; the envelopes packed in one buffer of their own, and each body's
 *  MD5. */
export function sealPacked(
  key: Buffer,
  aad: Buffer,
  packed: Buffer,
  lengths: readonly number[],
): { packed: Buffer; lengths: number[]; digests: string[] } {
  const out = Buffer.allocUnsafeSlow(packed.length + lengths.length * SEAL_OVERHEAD_BYTES);
  const sealedLengths: number[] = [];
  const digests: string[] = [];
  let from = 0;
  let at = 0;
  for (const length of lengths) {
    const body = packed.subarray(from, from + length);
    const written = sealBodyInto(key, body, aad, out, at);
    sealedLengths.push(written);
    digests.push(bodyMd5(body));
    from += length;
    at += written;
  }
  return { packed: out, lengths: sealedLengths, digests };
}

/** Opens every packed envelope; the bodies packed in one buffer of their own, NOT_OPENED for
 *  an envelope that does not open. */
export function openPacked(
  key: Buffer,
  aad: Buffer,
  packed: Buffer,
  lengths: readonly number[],
): { packed: Buffer; lengths: number[] } {
  const bodies: Buffer[] = [];
  const openedLengths: number[] = [];
  let from = 0;
  for (const length of lengths) {
    const body = openBody(key, packed.subarray(from, from + length), aad);
    from += length;
    openedLengths.push(body === null ? NOT_OPENED : body.length);
    if (body !== null) bodies.push(body);
  }
  return { packed: packBodies(bodies).packed, lengths: openedLengths };
}

function isLengths(value: unknown, total: number, notOpened: boolean): value is number[] {
  if (!Array.isArray(value)) return false;
  let sum = 0;
  for (const length of value) {
    if (notOpened && length === NOT_OPENED) continue;
    if (!Number.isSafeInteger(length) || (length as number) < 0) return false;
    sum += length as number;
  }
  return sum === total;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** A request as the worker received it, or null when it is not one. */
export function decodeSealRequest(value: unknown): SealRequest | null {
  if (!isRecord(value)) return null;
  const { id, op, key, aad, packed, lengths } = value;
  if (!Number.isSafeInteger(id)) return null;
  if (op !== 'seal' && op !== 'open') return null;
  if (!(key instanceof Uint8Array) || key.length !== 32) return null;
  if (!(aad instanceof Uint8Array)) return null;
  if (!(packed instanceof ArrayBuffer) || !isLengths(lengths, packed.byteLength, false))
    return null;
  return { id: id as number, op, key, aad, packed, lengths };
}

/** An answer as the event loop received it, or null when it is not one. */
export function decodeSealAnswer(value: unknown): SealAnswer | null {
  if (!isRecord(value) || !Number.isSafeInteger(value.id)) return null;
  const id = value.id as number;
  if (typeof value.error === 'string') return { id, error: value.error };
  const { packed, lengths, digests } = value;
  if (!(packed instanceof ArrayBuffer) || !isLengths(lengths, packed.byteLength, true)) return null;
  if (digests === undefined) return { id, packed, lengths };
  if (
    !Array.isArray(digests) ||
    digests.length !== lengths.length ||
    !digests.every((digest) => typeof digest === 'string' && BODY_MD5_PATTERN.test(digest))
  )
    return null;
  return { id, packed, lengths, digests: digests as string[] };
}

/** The items of a SealRequests message as the worker received it (each decoded on its own by
 *  decodeSealRequest), or null when it is not one. */
export function requestsOf(value: unknown): unknown[] | null {
  return isRecord(value) && Array.isArray(value.requests) ? (value.requests as unknown[]) : null;
}

/** The answers of a SealAnswers message as the event loop received it, or null when it or any
 *  answer in it is not one (a thread that answers garbage is not trusted with any of it). */
export function decodeSealAnswers(value: unknown): SealAnswer[] | null {
  if (!isRecord(value) || !Array.isArray(value.answers)) return null;
  const answers: SealAnswer[] = [];
  for (const item of value.answers as unknown[]) {
    const answer = decodeSealAnswer(item);
    if (answer === null) return null;
    answers.push(answer);
  }
  return answers;
}

/** A Buffer over a Uint8Array that crossed threads (structured clone drops Buffer's prototype). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
