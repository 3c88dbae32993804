// Receipt handles, format v2: unpadded base64url (43 characters, the one canonical spelling) of
// 32 bytes, the fields in the clear followed by an AES-CMAC tag (RFC 4493, NIST SP 800-38B):
//
//   0           1              3             5                 11            13                 16
//   | version=2 | brokerId u16 | queueId u16 | queueOffset u48 | attempt u16 | consumerSlot u24 |
//   16                                   32
//   | tag = AES-CMAC(K, S | bytes[0..16]) |
//
//   S = SHA-256(scope)[0..16] XOR E; K = HKDF-SHA256(broker MAC key, info "wharf/receipt-handle/v2")
//   E = 12 zero bytes | epoch u32 (the delivery's reset epoch, see below; 0 for nearly every handle)
//
// The attempt field holds a cursor's reset generation modulo 64 only (queue-cursor.ts); the rest
// of its reset count, the epoch, is in the tag and not in the fields, so a handle issued 64 resets
// before does not name the delivery of the same offset and attempt after them. Epoch 0 leaves S
// as it was: handles of cursors reset fewer than 64 times are those of the format before epochs.
// A handle whose tag holds under an older epoch than its cursor's (up to MAX_EPOCHS_BACK) decodes
// with that epoch, and the broker answers it as a delivery that is over.
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
import { createHash, hkdfSync } from 'node:crypto';
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
  /** At most 65535: the broker puts the delivery's attempt (at most 1000) in the low 10 bits and
   *  its cursor's reset generation above them (queue-cursor.ts). */
  attempt: number;
  /** 0 for clustering groups; a broadcasting consumer's slot, below 2^24. */
  consumerSlot: number;
  /** The reset epoch the tag is made under (not in the fields); absent: 0. */
  epoch?: number;
}

/** The epoch a handle's tag is checked under first: that of the cursor it names. */
export type EpochOf = (queueId: number, consumerSlot: number) => number;

/** Older epochs a handle whose tag does not hold under its cursor's is tried under. */
const MAX_EPOCHS_BACK = 64;
const MAX_EPOCH = 2 ** 32 - 1;

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
    const handles = Buffer.allocUnsafe(receipts.length * HANDLE_BYTES);
    receipts.forEach((receipt, i) => writeFields(handles, i * HANDLE_BYTES, receipt));
    const tags = this.tags(
      scope,
      handles,
      receipts.length,
      receipts.map((receipt) => receipt.epoch ?? 0),
    );
    const out: string[] = [];
    for (let i = 0; i < receipts.length; i++) {
      const at = i * HANDLE_BYTES;
      tags.copy(handles, at + BLOCK_BYTES, i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
      out.push(handles.toString('base64url', at, at + HANDLE_BYTES));
    }
    return out;
  }

  /** The receipt a handle names, or null when it is malformed, forged or of another scope. */
  decode(scope: string, handle: string): Receipt | null {
    return this.decodeMany(scope, [handle])[0] ?? null;
  }

  /** decode() for many handles with one native AES call; `epochOf` gives the epoch each one's
   *  tag is checked under (default 0). */
  decodeMany(scope: string, handles: readonly string[], epochOf?: EpochOf): (Receipt | null)[] {
    const results: (Receipt | null)[] = handles.map(() => null);
    // The candidates' bytes packed one after another; index[k] is the k-th one's handle.
    const packed = Buffer.allocUnsafe(handles.length * HANDLE_BYTES);
    const index: number[] = [];
    for (let i = 0; i < handles.length; i++) {
      const handle = handles[i];
      // The pattern fixes alphabet, length and the last character's spare bits: what it accepts
      // is the one canonical spelling of 32 bytes, so decoding cannot fail or be ambiguous.
      if (!HANDLE_PATTERN.test(handle)) continue;
      const at = index.length * HANDLE_BYTES;
      packed.write(handle, at, HANDLE_BYTES, 'base64url');
      if (packed[at] !== RECEIPT_HANDLE_VERSION) continue;
      index.push(i);
    }
    if (index.length === 0) return results;
    const epochs = index.map((_, k) =>
      epochOf === undefined ? 0 : epochOf(readQueueId(packed, k), readConsumerSlot(packed, k)),
    );
    const tags = this.tags(scope, packed, index.length, epochs);
    for (let k = 0; k < index.length; k++) {
      let epoch: number | null = epochs[k];
      if (!tagMatches(tags, k, packed, k)) epoch = this.olderEpoch(scope, packed, k, epochs[k]);
      if (epoch === null) continue;
      const at = k * HANDLE_BYTES;
      results[index[k]] = {
        brokerId: packed.readUInt16BE(at + 1),
        queueId: readQueueId(packed, k),
        queueOffset: packed.readUIntBE(at + 5, 6),
        attempt: packed.readUInt16BE(at + 11),
        consumerSlot: readConsumerSlot(packed, k),
        ...(epoch > 0 ? { epoch } : {}),
      };
    }
    return results;
  }

  /** The older epoch (at most MAX_EPOCHS_BACK back) the k-th handle's tag holds under, or null
   *  (a forged or foreign handle, or one of a long-gone epoch). Only for handles that failed. */
  private olderEpoch(scope: string, packed: Buffer, k: number, epoch: number): number | null {
    if (epoch === 0) return null;
    const one = packed.subarray(k * HANDLE_BYTES, (k + 1) * HANDLE_BYTES);
    for (let older = epoch - 1; older >= Math.max(0, epoch - MAX_EPOCHS_BACK); older--) {
      if (tagMatches(this.tags(scope, one, 1, [older]), 0, one, 0)) return older;
    }
    return null;
  }

  /** AES-CMAC(K, S ^ E | fields) for the first `count` handles laid out in `handles` (the fields
   *  are each one's first block), each under its epoch, in one AES call. */
  private tags(scope: string, handles: Buffer, count: number, epochs: readonly number[]): Buffer {
    const k1 = this.k1;
    const input = Buffer.allocUnsafe(count * BLOCK_BYTES);
    let stateEpoch = -1;
    let state = this.k1;
    for (let i = 0; i < count; i++) {
      if (epochs[i] !== stateEpoch) {
        stateEpoch = epochs[i];
        state = this.scopeState(scope, stateEpoch);
      }
      for (let b = 0; b < BLOCK_BYTES; b++) {
        input[i * BLOCK_BYTES + b] = handles[i * HANDLE_BYTES + b] ^ state[b] ^ k1[b];
      }
    }
    return this.cipher.encrypt(input);
  }

  private scopeState(scope: string, epoch: number): Buffer {
    if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH)
      throw new RangeError(`receipt epoch out of range: ${epoch}`);
    const cacheKey = epoch === 0 ? scope : `${scope}\u0000${epoch}`;
    let state = this.scopeStates.get(cacheKey);
    if (state === undefined) {
      const first = createHash('sha256').update(scope, 'utf8').digest().subarray(0, BLOCK_BYTES);
      first.writeUInt32BE((first.readUInt32BE(12) ^ epoch) >>> 0, 12);
      state = this.cipher.encrypt(first);
      if (this.scopeStates.size >= SCOPE_CACHE_LIMIT) this.scopeStates.clear();
      this.scopeStates.set(cacheKey, state);
    }
    return state;
  }
}

function readQueueId(packed: Buffer, k: number): number {
  return packed.readUInt16BE(k * HANDLE_BYTES + 3);
}

function readConsumerSlot(packed: Buffer, k: number): number {
  return packed.readUIntBE(k * HANDLE_BYTES + 13, 3);
}

/** Whether the k-th tag computed equals the tag the j-th handle carries; constant time within a
 *  handle, as timingSafeEqual: no early exit on the first difference. */
function tagMatches(tags: Buffer, k: number, packed: Buffer, j: number): boolean {
  let difference = 0;
  for (let b = 0; b < BLOCK_BYTES; b++) {
    difference |= tags[k * BLOCK_BYTES + b] ^ packed[j * HANDLE_BYTES + BLOCK_BYTES + b];
  }
  return difference === 0;
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
