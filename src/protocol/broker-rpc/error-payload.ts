// The payload of an error frame: the WharfError the broker threw, so that it is thrown again on
// the caller's side with the same code, message, retriable flag, retry-after and details.
//
//   json { code: ErrorCode, message: str, retriable: bool, retryAfterMs?: number,
//          details?: object }
//
// Anything but a WharfError crosses as `Internal` with a fixed message: a broker's internals
// (paths, stacks) stay in its own log. The cause does not cross.
import { ERROR_CODES, WharfError, type ErrorCode } from '../../errors.js';
import { BROKER_RPC_VERSION, FRAME_HEADER_BYTES, FrameKind, writeFrameHeader } from './frame.js';
import type { Frame } from './frame.js';
import { decodePayload } from './operations.js';
import { PayloadWriter } from './payload.js';
import { boolean, fail, number, object, optional, record, string, type Shape } from './shape.js';

const isErrorCode = (value: string): value is ErrorCode => Object.hasOwn(ERROR_CODES, value);

const errorCode: Shape<ErrorCode> = (value, path, context) => {
  const code = string(value, path, context);
  if (isErrorCode(code)) return code;
  return fail(path, `a known error code, not ${code}`);
};

const errorShape = object({
  code: errorCode,
  message: string,
  retriable: boolean,
  retryAfterMs: optional(number),
  details: optional(record((value: unknown) => value)),
});

function jsonDetails(details: Record<string, unknown> | undefined): unknown {
  if (details === undefined) return undefined;
  try {
    return JSON.parse(JSON.stringify(details)) as unknown;
  } catch {
    return undefined; // details that are not JSON (a cycle, a BigInt) stay behind
  }
}

/** The error frame answering request `requestId` of operation number `op`. */
export function encodeError(op: number, requestId: number, error: unknown): Buffer {
  const wharf =
    error instanceof WharfError ? error : new WharfError('Internal', 'broker internal error');
  const w = new PayloadWriter(256, FRAME_HEADER_BYTES);
  w.json({
    code: wharf.code,
    message: wharf.message,
    retriable: wharf.retriable,
    retryAfterMs: wharf.retryAfterMs,
    details: jsonDetails(wharf.details),
  });
  const out = w.finish();
  writeFrameHeader(
    out,
    { version: BROKER_RPC_VERSION, kind: FrameKind.error, requestId, op },
    out.length - FRAME_HEADER_BYTES,
  );
  return out;
}

/** The WharfError an error frame carries. */
export function decodeError(
  frame: Frame,
): { status: 'ok'; error: WharfError } | { status: 'corrupt'; reason: string } {
  const decoded = decodePayload(frame.payload, (r) => errorShape(r.json(), '', { blobs: [] }));
  if (decoded.status !== 'ok') return decoded;
  const { code, message, retryAfterMs, details } = decoded.value;
  return { status: 'ok', error: new WharfError(code, message, { retryAfterMs, details }) };
}
