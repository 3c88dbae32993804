// Message ids, format v1: 32 uppercase hex characters (RocketMQ's length, user-visible, kept in
// dead-letter keys and on copies: readable by every later version), the AES-128 encryption of
// one block:
//
//   0       2                 8              12           16
//   | brokerId u16 | logOffset u48 | scopeTag u32 | MAGIC u32 |
//
// MAGIC is the format's version field ("WMID" = v1): a later format takes another value in the
// same place, under the same key, and decode() dispatches on it — so v1 ids stay readable.
// The construction is encode-then-encipher (Bellare–Rogaway): AES on one 16-byte block is a
// keyed permutation of the whole id, with 64 bits of redundancy checked after decryption. What a
// client who alters an id can reach: nothing predictable. There is no chaining: flipping any bit,
// or writing any other 32 hex digits, gives a plaintext independent of the original, which passes
// MAGIC and the scope tag with probability 2^-64; carrying an id to another topic passes with
// 2^-32 (scope tag) and then still meets the broker's check of the record's own topic, within
// the caller's own tenant (the tenant comes from the credential). Only the canonical spelling
// (uppercase) is accepted. Why not an HMAC: an id is 128 bits; a 64-bit tag would leave under 64
// bits for version, broker and offset and show the broker's log offsets — every tenant's traffic
// — to every tenant. The logOffset is the message's first stored position: a copy (retry, dead
// letter, dispatched delayed message) keeps the id of its original.
import { BLOCK_BYTES, BlockCipher, deriveKey } from './block-cipher.js';
import { scopeTag } from './scope-tag.js';

/** v1's MAGIC, "WMID". */
export const MESSAGE_ID_V1 = 0x574d4944;
const MAX_LOG_OFFSET = 2 ** 48 - 1;
const ID_PATTERN = /^[0-9A-F]{32}$/;

export interface MessagePosition {
  brokerId: number;
  logOffset: number;
}

export class MessageIdCodec {
  private readonly cipher: BlockCipher;

  constructor(macKey: Buffer) {
    this.cipher = new BlockCipher(deriveKey(macKey, 'message-id'));
  }

  /** Ids for many positions of one scope in one native call. */
  encode(scope: string, positions: readonly MessagePosition[]): string[] {
    const tag = scopeTag(scope);
    const plain = Buffer.allocUnsafe(positions.length * BLOCK_BYTES);
    positions.forEach((position, i) => {
      const at = i * BLOCK_BYTES;
      if (
        !Number.isSafeInteger(position.logOffset) ||
        position.logOffset < 0 ||
        position.logOffset > MAX_LOG_OFFSET
      ) {
        throw new RangeError(`logOffset out of range: ${position.logOffset}`);
      }
      plain.writeUInt16BE(position.brokerId, at);
      plain.writeUIntBE(position.logOffset, at + 2, 6);
      tag.copy(plain, at + 8, 0, 4);
      plain.writeUInt32BE(MESSAGE_ID_V1, at + 12);
    });
    const sealed = this.cipher.encrypt(plain);
    const ids: string[] = [];
    for (let i = 0; i < positions.length; i++) {
      ids.push(sealed.toString('hex', i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES).toUpperCase());
    }
    return ids;
  }

  encodeOne(scope: string, position: MessagePosition): string {
    return this.encode(scope, [position])[0];
  }

  /**
   * The broker an id names, checking its version but not its scope (a cluster gateway routes by
   * it before it knows the scope, e.g. a dead letter's original topic; the broker then checks
   * all). Null for a malformed id or one that fails MAGIC (a forgery passes with 2^-32).
   */
  brokerOf(messageId: string): number | null {
    if (!ID_PATTERN.test(messageId)) return null;
    const plain = this.cipher.decrypt(Buffer.from(messageId, 'hex'));
    if (plain.readUInt32BE(12) !== MESSAGE_ID_V1) return null;
    return plain.readUInt16BE(0);
  }

  /** The position an id stands for, or null when it is malformed, forged or of another scope. */
  decode(scope: string, messageId: string): MessagePosition | null {
    if (!ID_PATTERN.test(messageId)) return null;
    const plain = this.cipher.decrypt(Buffer.from(messageId, 'hex'));
    if (plain.readUInt32BE(12) !== MESSAGE_ID_V1) return null; // the only version so far
    if (!plain.subarray(8, 12).equals(scopeTag(scope).subarray(0, 4))) return null;
    return { brokerId: plain.readUInt16BE(0), logOffset: plain.readUIntBE(2, 6) };
  }
}
