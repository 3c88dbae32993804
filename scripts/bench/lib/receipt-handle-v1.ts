// The yardstick of bench:gateway's ids row: receipt handle format v1 as it was before format v2
// (src/protocol/receipt-handle.ts), kept only to measure old against new in one run. Not used by
// Wharf: v1 was malleable (see the issue #8 notes in README). Receipt handles: base64url of two AES blocks chained like CBC (C2 = E(P2 xor C1)), so neither
// block can be swapped between handles:
//
//   P1: | version u8 | brokerId u16 | queueId u16 | queueOffset u48 | attempt u16 | consumerSlot u24 |
//   P2: | scopeTag 8 bytes (tenant/instance/topic/group[/consumer]) | issuedAtSec u32 | MAGIC u32 |
//
// A handle names one delivery: (queue, offset, attempt) of one consumer (slot 0 for a clustering
// group, the broadcasting consumer's slot otherwise). The broker accepts it only while that
// delivery is the message's current one, so a handle from before a redelivery is stale.
import { BLOCK_BYTES, BlockCipher, deriveKey } from '../../../src/protocol/block-cipher.js';
import { scopeTag } from '../../../src/protocol/scope-tag.js';

const VERSION = 1;
const MAGIC = 0x57524348; // "WRCH"
const HANDLE_BYTES = 2 * BLOCK_BYTES;
const HANDLE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

interface Receipt {
  brokerId: number;
  queueId: number;
  queueOffset: number;
  /** At most 65535 (maxDeliveryAttempts is at most 1000). */
  attempt: number;
  /** 0 for clustering groups; a broadcasting consumer's slot, below 2^24. */
  consumerSlot: number;
  issuedAtSec: number;
}

export class ReceiptHandleCodecV1 {
  private readonly cipher: BlockCipher;

  constructor(macKey: Buffer) {
    this.cipher = new BlockCipher(deriveKey(macKey, 'receipt-handle'));
  }

  encode(scope: string, receipts: readonly Receipt[]): string[] {
    const count = receipts.length;
    const first = Buffer.allocUnsafe(count * BLOCK_BYTES);
    const second = Buffer.allocUnsafe(count * BLOCK_BYTES);
    const tag = scopeTag(scope);
    receipts.forEach((receipt, i) => {
      const at = i * BLOCK_BYTES;
      first.writeUInt8(VERSION, at);
      first.writeUInt16BE(receipt.brokerId, at + 1);
      first.writeUInt16BE(receipt.queueId, at + 3);
      first.writeUIntBE(receipt.queueOffset, at + 5, 6);
      first.writeUInt16BE(receipt.attempt, at + 11);
      first.writeUIntBE(receipt.consumerSlot, at + 13, 3);
      tag.copy(second, at, 0, 8);
      second.writeUInt32BE(receipt.issuedAtSec >>> 0, at + 8);
      second.writeUInt32BE(MAGIC, at + 12);
    });
    const sealedFirst = this.cipher.encrypt(first);
    for (let i = 0; i < second.length; i++) second[i] = second[i] ^ sealedFirst[i];
    const sealedSecond = this.cipher.encrypt(second);
    const handles: string[] = [];
    const handle = Buffer.allocUnsafe(HANDLE_BYTES);
    for (let i = 0; i < count; i++) {
      sealedFirst.copy(handle, 0, i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
      sealedSecond.copy(handle, BLOCK_BYTES, i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
      handles.push(handle.toString('base64url'));
    }
    return handles;
  }

  /** The receipt a handle names, or null when it is malformed, forged or of another scope. */
  decode(scope: string, handle: string): Receipt | null {
    return this.decodeMany(scope, [handle])[0] ?? null;
  }

  /** decode() for many handles with one native decryption. */
  decodeMany(scope: string, handles: readonly string[]): (Receipt | null)[] {
    const sealed: Buffer[] = [];
    const index: number[] = [];
    handles.forEach((handle, i) => {
      if (!HANDLE_PATTERN.test(handle)) return;
      const bytes = Buffer.from(handle, 'base64url');
      if (bytes.length !== HANDLE_BYTES) return;
      sealed.push(bytes);
      index.push(i);
    });
    const results: (Receipt | null)[] = handles.map(() => null);
    if (sealed.length === 0) return results;
    const all = Buffer.concat(sealed);
    const plain = this.cipher.decrypt(all);
    const tag = scopeTag(scope);
    sealed.forEach((_, k) => {
      const at = k * HANDLE_BYTES;
      const first = plain.subarray(at, at + BLOCK_BYTES);
      const second = plain.subarray(at + BLOCK_BYTES, at + HANDLE_BYTES);
      for (let i = 0; i < BLOCK_BYTES; i++) second[i] = second[i] ^ all[at + i];
      if (second.readUInt32BE(12) !== MAGIC || first.readUInt8(0) !== VERSION) return;
      if (!second.subarray(0, 8).equals(tag)) return;
      results[index[k]] = {
        brokerId: first.readUInt16BE(1),
        queueId: first.readUInt16BE(3),
        queueOffset: first.readUIntBE(5, 6),
        attempt: first.readUInt16BE(11),
        consumerSlot: first.readUIntBE(13, 3),
        issuedAtSec: second.readUInt32BE(8),
      };
    });
    return results;
  }
}
