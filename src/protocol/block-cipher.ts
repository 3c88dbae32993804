// A keyed pseudorandom permutation on 16-byte blocks (AES-128 applied block by block), used to
// make message ids (one block each) opaque and tamper-evident. One cipher object per key is
// reused for every call: with whole blocks and no padding, `update` keeps no state between calls,
// so a batch of ids costs one native call. Never chain blocks with it: that is what made v1
// receipt handles malleable (receipt handles are HMAC-tagged now, receipt-handle.ts).
import {
  createCipheriv,
  createDecipheriv,
  hkdfSync,
  type Cipher,
  type Decipher,
} from 'node:crypto';

export const BLOCK_BYTES = 16;

/** Derives a 16-byte sub-key for one purpose from the broker's MAC key. */
export function deriveKey(macKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', macKey, Buffer.alloc(0), `wharf/${purpose}`, BLOCK_BYTES));
}

export class BlockCipher {
  private readonly cipher: Cipher;
  private readonly decipher: Decipher;

  constructor(key: Buffer) {
    if (key.length !== BLOCK_BYTES) throw new RangeError('BlockCipher key must be 16 bytes');
    this.cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.decipher = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  }

  /** Encrypts whole blocks independently; `data.length` must be a multiple of 16. */
  encrypt(data: Buffer): Buffer {
    return this.cipher.update(data);
  }

  decrypt(data: Buffer): Buffer {
    return this.decipher.update(data);
  }
}
