// A keyed pseudorandom permutation on 16-byte blocks (AES-128 applied block by block): message
// ids are one block each, receipt handles carry an AES-CMAC computed with it. One cipher object
// per key is reused for every call: with whole blocks and no padding, `update` keeps no state
// between calls, so a batch of ids or handles costs one native call. Not an encryption mode by
// itself: chaining blocks by hand is what made v1 receipt handles malleable.
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
