// Message ids: 32 uppercase hex characters (RocketMQ's length), the encryption of one block
//
//   0       2                 8              12           16
//   | brokerId u16 | logOffset u48 | scopeTag u32 | MAGIC u32 |
//
// So an id maps to (broker, commit-log position) by arithmetic after one AES block decryption, and
// an altered or forged id, or one carried to another tenant's topic, fails the MAGIC or scope
// check (2^-64 chance to pass by luck). The logOffset is the message's first stored position: a
// copy (retry, dead letter, dispatched delayed message) keeps the id of its original.
import { BLOCK_BYTES, BlockCipher, deriveKey } from './block-cipher.js';
import { scopeTag } from './scope-tag.js';

const MAGIC = 0x574d4944; // "WMID"
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
      plain.writeUInt32BE(MAGIC, at + 12);
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

  /** The position an id stands for, or null when it is malformed, forged or of another scope. */
  decode(scope: string, messageId: string): MessagePosition | null {
    if (!ID_PATTERN.test(messageId)) return null;
    const plain = this.cipher.decrypt(Buffer.from(messageId, 'hex'));
    if (plain.readUInt32BE(12) !== MAGIC) return null;
    if (!plain.subarray(8, 12).equals(scopeTag(scope).subarray(0, 4))) return null;
    return { brokerId: plain.readUInt16BE(0), logOffset: plain.readUIntBE(2, 6) };
  }
}
