// AES-256-GCM sealing of secrets at rest (access-key secrets, JWT private keys). The key is
// derived from WHARF_MASTER_KEY with HKDF so the master key itself is never used directly.
// Sealed form: `v1.<iv>.<tag>.<ciphertext>` (base64url). The caller's `context` is bound as
// AAD, so a sealed value copied onto another record (another key id) fails to open.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { WharfError } from '../errors.js';

export function deriveKey(masterKey: Buffer | string, info: string, bytes = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), info, bytes));
}

export class SecretBox {
  private readonly key: Buffer;

  constructor(masterKey: Buffer | string) {
    this.key = deriveKey(masterKey, 'wharf-secret-box');
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `v1.${iv.toString('base64url')}.${tag.toString('base64url')}.${ciphertext.toString('base64url')}`;
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') {
      throw new WharfError('Internal', 'sealed secret in an unknown format');
    }
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        this.key,
        Buffer.from(parts[1], 'base64url'),
      );
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(parts[2], 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(parts[3], 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch (cause) {
      throw new WharfError('Internal', 'a sealed secret failed to open (wrong master key?)', {
        cause,
      });
    }
  }
}
