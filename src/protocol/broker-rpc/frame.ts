// Broker RPC frames, the unit both transports carry (the TCP transport back to back on one
// connection, the HTTP/2 one as a stream's body). The header is frozen for every version:
//
//   0             4            5         6               10        12
//   | length u32 | version u8 | kind u8 | requestId u32 | op u16 | payload (length - 8) |
//
// `length` counts the bytes after itself. `version` names the payload grammar of the operations
// (operations.ts); `kind` is request, response, error or cancel; `requestId` pairs answers with
// calls on a multiplexed connection; `op` is the operation's number in the operation table. A
// decoder reads only complete frames and returns ok / incomplete / corrupt, never throws.

/** The payload grammar this code writes; operations.ts decodes it. */
export const BROKER_RPC_VERSION = 1;
export const FRAME_LENGTH_BYTES = 4;
export const FRAME_HEADER_BYTES = 12;
/** A frame larger than this is corrupt: a bad length must not make a reader buffer gigabytes. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export const FrameKind = {
  request: 1,
  response: 2,
  error: 3,
  /** The caller gave up (abort or deadline): the server aborts the call's signal. */
  cancel: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const KINDS = new Set<number>(Object.values(FrameKind));

export interface Frame {
  version: number;
  kind: FrameKind;
  requestId: number;
  op: number;
  payload: Buffer;
}

export type FrameDecodeResult =
  | { status: 'ok'; frame: Frame; bytes: number }
  | { status: 'incomplete' }
  | { status: 'corrupt'; reason: string };

/** One frame's bytes; the payload is copied after the header. */
export function encodeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + frame.payload.length);
  writeFrameHeader(out, frame, frame.payload.length);
  frame.payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** Writes the header of a frame whose payload of `payloadBytes` follows at FRAME_HEADER_BYTES:
 *  lets a payload writer reserve the header and encode in place, without a second copy. */
export function writeFrameHeader(
  out: Buffer,
  frame: Omit<Frame, 'payload'>,
  payloadBytes: number,
): void {
  const length = FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES + payloadBytes;
  if (length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${length} bytes over the limit`);
  out.writeUInt32BE(length, 0);
  out.writeUInt8(frame.version, 4);
  out.writeUInt8(frame.kind, 5);
  out.writeUInt32BE(frame.requestId, 6);
  out.writeUInt16BE(frame.op, 10);
}

/** The frame starting at `at` in `input`; the payload is a view into `input`. */
export function decodeFrame(input: Buffer, at = 0): FrameDecodeResult {
  const available = input.length - at;
  if (available < FRAME_LENGTH_BYTES) return { status: 'incomplete' };
  const length = input.readUInt32BE(at);
  if (length < FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES) {
    return { status: 'corrupt', reason: `frame length ${length} under the header` };
  }
  if (length > MAX_FRAME_BYTES) {
    return { status: 'corrupt', reason: `frame length ${length} over the limit` };
  }
  // the header is checked as soon as it is there, so garbage is refused before its "length" is read
  if (available >= FRAME_HEADER_BYTES && !KINDS.has(input[at + 5])) {
    return { status: 'corrupt', reason: `unknown frame kind ${input[at + 5]}` };
  }
  if (available < FRAME_LENGTH_BYTES + length) return { status: 'incomplete' };
  const kind = input[at + 5] as FrameKind; // checked against KINDS above
  return {
    status: 'ok',
    frame: {
      version: input[at + 4],
      kind,
      requestId: input.readUInt32BE(at + 6),
      op: input.readUInt16BE(at + 10),
      payload: input.subarray(at + FRAME_HEADER_BYTES, at + FRAME_LENGTH_BYTES + length),
    },
    bytes: FRAME_LENGTH_BYTES + length,
  };
}

/**
 * A byte stream cut into frames: push chunks as they arrive (any split, one byte at a time), get
 * the complete frames. After a corrupt frame the stream is unusable (its framing is lost).
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Bytes the frame at the head needs in all, once its length is known; 0 before. */
  private neededBytes = 0;

  push(chunk: Buffer): { frames: Frame[]; corrupt?: string } {
    // a large frame arriving in many chunks is joined once, not at every chunk
    if (this.neededBytes > 0 && this.chunkBytes + chunk.length < this.neededBytes) {
      this.chunks.push(chunk);
      this.chunkBytes += chunk.length;
      return { frames: [] };
    }
    const input = this.chunkBytes === 0 ? chunk : Buffer.concat([...this.chunks, chunk]);
    this.chunks = [];
    this.chunkBytes = 0;
    this.neededBytes = 0;
    const frames: Frame[] = [];
    let at = 0;
    for (;;) {
      const result = decodeFrame(input, at);
      if (result.status === 'corrupt') return { frames, corrupt: result.reason };
      if (result.status === 'incomplete') break;
      frames.push(result.frame);
      at += result.bytes;
    }
    if (at < input.length) {
      const rest = input.subarray(at);
      this.chunks.push(rest);
      this.chunkBytes = rest.length;
      if (rest.length >= FRAME_LENGTH_BYTES) {
        this.neededBytes = FRAME_LENGTH_BYTES + rest.readUInt32BE(0);
      }
    }
    return { frames };
  }

  /** Bytes held for a frame not complete yet. */
  get bufferedBytes(): number {
    return this.chunkBytes;
  }
}
