// Receipt handles, format v2: unpadded base64url (43 characters, the one canonical spelling) of
// 32 bytes, the fields in the clear followed by an AES-CMAC tag (RFC 4493, NIST SP 800-38B):
//
//   0           1              3             5                 11            13                 16
//   | version=2 | brokerId u16 | queueId u16 | queueOffset u48 | attempt u16 | consumerSlot u24 |
//   16                                   32
//   | tag = AES-CMAC(K, S | bytes[0..16]) |
//
//   S = SHA-256(scope)[0..16]; K = HKDF-SHA256(broker MAC key, info "wharf/receipt-handle/v2")
//
// The scope names tenant, instance, topic, group and the group's incarnation (names.ts), so a
// handle is worthless to another tenant, topic or group, and to a group deleted and re-created.
// The fields are the caller's own (the receive answer shows queueId and queueOffset): they need
// integrity, not secrecy. The MAC input is always two whole blocks, so CMAC's last-block subkey is
// K1 and the first block's encryption is shared by every handle of a scope: a batch costs one
// native AES call. Any change to any byte, or any other scope, passes with probability 2^-128;
// only the canonical spelling is accepted (decode, re-encode, compare). v1 handles (two chained
// AES blocks, malleable) are refused. A handle names one delivery: (queue, offset, attempt) of
// one consumer (slot 0 for a clustering group); the broker accepts it only while that delivery
// is the message's current one.
import { createHash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { BLOCK_BYTES, BlockCipher } from './block-cipher.js';

export const RECEIPT_HANDLE_VERSION = 2;
const HANDLE_BYTES = 2 * BLOCK_BYTES;
/** 32 bytes in unpadded base64url: 43 characters, the last one's low 2 bits zero. */
const HANDLE_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const MAX_QUEUE_OFFSET = 2 ** 48 - 1;
const SCOPE_CACHE_LIMIT = 10_000;

export interface Receipt {
  brokerId: number;
  queueId: number;
  queueOffset: number;
  /** At most 65535 (maxDeliveryAttempts is at most 1000). */
  attempt: number;
  /** 0 for clustering groups; a broadcasting consumer's slot, below 2^24. */
  consumerSlot: number;
}

export class ReceiptHandleCodec {
  private readonly cipher: BlockCipher;
  /** CMAC subkey K1 (RFC 4493 §2.3). */
  private readonly k1: Buffer;
  /** scope → AES_K(S): CMAC's state after the first block. */
  private readonly scopeStates = new Map<string, Buffer>();

  constructor(macKey: Buffer) {
    const key = Buffer.from(
      hkdfSync('sha256', macKey, Buffer.alloc(0), 'wharf/receipt-handle/v2', BLOCK_BYTES),
    );
    this.cipher = new BlockCipher(key);
    this.k1 = doubleBlock(this.cipher.encrypt(Buffer.alloc(BLOCK_BYTES)));
  }

  encode(scope: string, receipts: readonly Receipt[]): string[] {
    const fields = Buffer.allocUnsafe(receipts.length * BLOCK_BYTES);
    receipts.forEach((receipt, i) => writeFields(fields, i * BLOCK_BYTES, receipt));
    const tags = this.tags(scope, fields);
    const handle = Buffer.allocUnsafe(HANDLE_BYTES);
    return receipts.map((_, i) => {
      fields.copy(handle, 0, i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
      tags.copy(handle, BLOCK_BYTES, i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
      return handle.toString('base64url');
    });
  }

  /** The receipt a handle names, or null when it is malformed, forged or of another scope. */
  decode(scope: string, handle: string): Receipt | null {
    return this.decodeMany(scope, [handle])[0] ?? null;
  }

  /** decode() for many handles with one native AES call. */
  decodeMany(scope: string, handles: readonly string[]): (Receipt | null)[] {
    const candidates: Buffer[] = [];
    const index: number[] = [];
    handles.forEach((handle, i) => {
      if (!HANDLE_PATTERN.test(handle)) return;
      const bytes = Buffer.from(handle, 'base64url');
      // the pattern fixes length and spare bits; the round trip is the rule itself
      if (bytes.length !== HANDLE_BYTES || bytes.toString('base64url') !== handle) return;
      if (bytes[0] !== RECEIPT_HANDLE_VERSION) return;
      candidates.push(bytes);
      index.push(i);
    });
    const results: (Receipt | null)[] = handles.map(() => null);
    if (candidates.length === 0) return results;
    const fields = Buffer.concat(candidates.map((bytes) => bytes.subarray(0, BLOCK_BYTES)));
    const tags = this.tags(scope, fields);
    candidates.forEach((bytes, k) => {
      const expected = tags.subarray(k * BLOCK_BYTES, (k + 1) * BLOCK_BYTES);
      if (!timingSafeEqual(expected, bytes.subarray(BLOCK_BYTES))) return;
      results[index[k]] = {
        brokerId: bytes.readUInt16BE(1),
        queueId: bytes.readUInt16BE(3),
        queueOffset: bytes.readUIntBE(5, 6),
        attempt: bytes.readUInt16BE(11),
        consumerSlot: bytes.readUIntBE(13, 3),
      };
    });
    return results;
  }

  /** AES-CMAC(K, S | fields_i) for each 16-byte block of `fields`, in one AES call. */
  private tags(scope: string, fields: Buffer): Buffer {
    const state = this.scopeState(scope);
    const input = Buffer.allocUnsafe(fields.length);
    for (let i = 0; i < fields.length; i++) {
      input[i] = fields[i] ^ state[i % BLOCK_BYTES] ^ this.k1[i % BLOCK_BYTES];
    }
    return this.cipher.encrypt(input);
  }

  private scopeState(scope: string): Buffer {
    let state = this.scopeStates.get(scope);
    if (state === undefined) {
      const digest = createHash('sha256').update(scope, 'utf8').digest();
      state = this.cipher.encrypt(digest.subarray(0, BLOCK_BYTES));
      if (this.scopeStates.size >= SCOPE_CACHE_LIMIT) this.scopeStates.clear();
      this.scopeStates.set(scope, state);
    }
    return state;
  }
}

/**
 * The broker id a handle names, read without its MAC (the fields are in the clear): a cluster
 * gateway routes an ack to that broker, which checks the MAC. Null for a malformed handle.
 */
export function receiptHandleBrokerId(handle: string): number | null {
  if (!HANDLE_PATTERN.test(handle)) return null;
  const bytes = Buffer.from(handle, 'base64url');
  if (bytes.length !== HANDLE_BYTES || bytes[0] !== RECEIPT_HANDLE_VERSION) return null;
  return bytes.readUInt16BE(1);
}

function writeFields(out: Buffer, at: number, receipt: Receipt): void {
  if (
    !Number.isSafeInteger(receipt.queueOffset) ||
    receipt.queueOffset < 0 ||
    receipt.queueOffset > MAX_QUEUE_OFFSET
  ) {
    throw new RangeError(`queueOffset out of range: ${receipt.queueOffset}`);
  }
  out.writeUInt8(RECEIPT_HANDLE_VERSION, at);
  out.writeUInt16BE(receipt.brokerId, at + 1);
  out.writeUInt16BE(receipt.queueId, at + 3);
  out.writeUIntBE(receipt.queueOffset, at + 5, 6);
  out.writeUInt16BE(receipt.attempt, at + 11);
  out.writeUIntBE(receipt.consumerSlot, at + 13, 3);
}

/** Doubling in GF(2^128), CMAC's subkey step: shift left one bit, xor 0x87 on carry. */
function doubleBlock(block: Buffer): Buffer {
  const out = Buffer.allocUnsafe(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    out[i] = ((block[i] << 1) | (i + 1 < BLOCK_BYTES ? block[i + 1] >> 7 : 0)) & 0xff;
  }
  if ((block[0] & 0x80) !== 0) out[BLOCK_BYTES - 1] ^= 0x87;
  return out;
}
