// Signing keys of tenant bearer tokens (ES256). Kept in Redis so that every gateway verifies
// every token; the private half is sealed with the master key. The first gateway that needs a
// key creates one; `SET NX` on the current-key pointer settles a race between two gateways.
// Old keys stay in the hash so tokens signed before a rotation keep verifying until they expire.
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { WharfError } from '../errors.js';
import { newKeyId } from './ids.js';
import {
  PRIVATE_JWK,
  SIGNING_KEY,
  decodeRecord,
  encodeRecord,
  type StoredSigningKey,
} from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import type { SecretBox } from './secret-box.js';

export const TOKEN_ALG = 'ES256';

export interface SigningKey {
  kid: string;
  publicJwk: JWK;
  privateJwk: JWK;
}

export class SigningKeyRepository {
  constructor(
    private readonly ctx: RepoContext,
    private readonly box: SecretBox,
  ) {}

  /** The key new tokens are signed with, created on first use. */
  async current(): Promise<SigningKey> {
    const { redis, keys } = this.ctx;
    let kid = await redis.get(keys.jwtCurrentKey());
    if (kid === null) {
      const created = await this.create();
      const won = await redis.set(keys.jwtCurrentKey(), created.kid, 'NX');
      if (won === 'OK') return created;
      await redis.hdel(keys.jwtKeys(), created.kid);
      kid = (await redis.get(keys.jwtCurrentKey()))!;
    }
    const stored = await readHashRecord(this.ctx, SIGNING_KEY, keys.jwtKeys(), kid);
    if (stored === null) throw new WharfError('Internal', `signing key ${kid} is missing`);
    return this.open(stored);
  }

  /** The public keys of every stored signing key (the JWKS). */
  async publicKeys(): Promise<JWK[]> {
    const stored = await readHashRecords(this.ctx, SIGNING_KEY, this.ctx.keys.jwtKeys());
    return stored.map((s) => s.publicJwk);
  }

  private async create(): Promise<SigningKey> {
    const kid = newKeyId();
    const pair = await generateKeyPair(TOKEN_ALG, { extractable: true });
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: TOKEN_ALG, use: 'sig' };
    const privateJwk = { ...(await exportJWK(pair.privateKey)), kid, alg: TOKEN_ALG };
    const stored: StoredSigningKey = {
      kid,
      publicJwk,
      sealedPrivateJwk: this.box.seal(JSON.stringify(privateJwk), kid),
      createdAt: Date.now(),
    };
    await this.ctx.redis.hset(this.ctx.keys.jwtKeys(), kid, encodeRecord(stored));
    return { kid, publicJwk, privateJwk };
  }

  private open(stored: StoredSigningKey): SigningKey {
    const at = { key: this.ctx.keys.jwtKeys(), field: stored.kid };
    return {
      kid: stored.kid,
      publicJwk: stored.publicJwk,
      privateJwk: decodeRecord(PRIVATE_JWK, this.box.open(stored.sealedPrivateJwk, stored.kid), at),
    };
  }
}
