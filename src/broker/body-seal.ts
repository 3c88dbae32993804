// The sealed-body envelope (crypto-shredding): a message body encrypted with its instance's data
// key, so deleting the key makes every stored copy unreadable at once, before retention reaches
// its segment. Pure: seal and open touch no key store. Frozen by test/fixtures/sealed-body-v1.json.
//
// Envelope (version 1), the whole `body` of a record whose flags carry MessageFlags.SEALED:
//    0  version     u8   1; anything else does not open
//    1  nonce       12   random (see sealBody)
//   13  ciphertext  n    AES-256-GCM of the body, n = plaintext length
//  13+n tag         16   GCM tag; the AAD binds `wharf-body-v1/<tenantId>/<instanceId>`, so an
//                        envelope copied under another instance (another key anyway) never opens
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';

export const SEALED_BODY_VERSION = 1;
export const SEAL_NONCE_BYTES = 12;
export const SEAL_TAG_BYTES = 16;
/** Bytes an envelope adds to a body. */
export const SEAL_OVERHEAD_BYTES = 1 + SEAL_NONCE_BYTES + SEAL_TAG_BYTES;
export const DATA_KEY_BYTES = 32;

// Nonces are cut from a pool of random bytes refilled 4 KiB at a time: one call into the CSPRNG
// per 341 messages, not one per message (randomBytes(12) cost about as much CPU as the AES-GCM
// of a 1 KiB body: ≈ 5 µs against ≈ 8 µs, measured on a loaded machine).
const noncePool = Buffer.alloc(SEAL_NONCE_BYTES * 341);
let noncePos = noncePool.length;

function nextNonce(): Buffer {
  if (noncePos === noncePool.length) {
    randomFillSync(noncePool);
    noncePos = 0;
  }
  const nonce = noncePool.subarray(noncePos, noncePos + SEAL_NONCE_BYTES);
  noncePos += SEAL_NONCE_BYTES;
  return nonce;
}

export function sealAad(tenantId: string, instanceId: string): Buffer {
  return Buffer.from(`wharf-body-v1/${tenantId}/${instanceId}`, 'utf8');
}

/**
 * Seals `body` under a 32-byte data key. The nonce is random, not derived from the log position:
 * the position is chosen by the store's group commit after sealing, and dead-letter and re-send
 * copies carry the same envelope to other positions, so a position-derived nonce would either
 * need the store to seal or repeat a nonce. 96 random bits keep the chance of a repeat under
 * 2^-32 for 2^32 messages per key (NIST SP 800-38D's bound for random nonces).
 */
export function sealBody(
  key: Buffer,
  body: Buffer,
  aad: Buffer,
  nonce: Buffer = nextNonce(),
): Buffer {
  const out = Buffer.allocUnsafe(SEAL_OVERHEAD_BYTES + body.length);
  sealBodyInto(key, body, aad, out, 0, nonce);
  return out;
}

/** sealBody writing the envelope at out[at..at + SEAL_OVERHEAD_BYTES + body.length) (a batch
 *  packed in one buffer, as the seal workers answer); returns the bytes written. */
export function sealBodyInto(
  key: Buffer,
  body: Buffer,
  aad: Buffer,
  out: Buffer,
  at: number,
  nonce: Buffer = nextNonce(),
): number {
  const length = SEAL_OVERHEAD_BYTES + body.length;
  if (at < 0 || at + length > out.length) throw new RangeError('no room for the envelope');
  out[at] = SEALED_BODY_VERSION;
  nonce.copy(out, at + 1, 0, SEAL_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const head = cipher.update(body);
  head.copy(out, at + 1 + SEAL_NONCE_BYTES);
  const tail = cipher.final();
  tail.copy(out, at + 1 + SEAL_NONCE_BYTES + head.length);
  cipher.getAuthTag().copy(out, at + length - SEAL_TAG_BYTES);
  return length;
}

/** The body inside an envelope, or null when it does not open (unknown version, cut, wrong key,
 *  tampered): a caller treats null as "no such message", never as an empty body. */
export function openBody(key: Buffer, envelope: Buffer, aad: Buffer): Buffer | null {
  if (envelope.length < SEAL_OVERHEAD_BYTES || envelope[0] !== SEALED_BODY_VERSION) return null;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      key,
      envelope.subarray(1, 1 + SEAL_NONCE_BYTES),
      { authTagLength: SEAL_TAG_BYTES },
    );
    decipher.setAAD(aad);
    decipher.setAuthTag(envelope.subarray(envelope.length - SEAL_TAG_BYTES));
    const ciphertext = envelope.subarray(1 + SEAL_NONCE_BYTES, envelope.length - SEAL_TAG_BYTES);
    const head = decipher.update(ciphertext);
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return null;
  }
}
