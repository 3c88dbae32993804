// The MD5 of a message body, as a publish answers it (`bodyMd5`, hex, what RocketMQ and SQS
// answer so a client can check what was stored): over the plaintext, before sealing.
import { hash } from 'node:crypto';

export function bodyMd5(body: Buffer): string {
  return hash('md5', body, 'hex'); // one-shot: no Hash object a message
}

/** What bodyMd5 gives: 32 lowercase hex digits. */
export const BODY_MD5_PATTERN = /^[0-9a-f]{32}$/;
