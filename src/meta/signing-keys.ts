// Signing keys of tenant bearer tokens (ES256). Kept in Redis so that every gateway verifies
// every token; the private half is sealed with the master key. The first gateway that needs a
// key creates one; `SET NX` on the current-key pointer settles a race between two gateways.
// Old keys stay in the hash so tokens signed before a rotation keep verifying until they expire.
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { newKeyId } from './ids.js';
import { parseJson, type RepoContext } from './repo-context.js';
import type { SecretBox } from './secret-box.js';

export const TOKEN_ALG = 'ES256';

interface StoredSigningKey {
  kid: string;
  publicJwk: JWK;
  sealedPrivateJwk: string;
  createdAt: number;
}

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
    const json = await redis.hget(keys.jwtKeys(), kid);
    if (json === null) throw new Error(`signing key ${kid} is missing`);
    return this.open(parseJson<StoredSigningKey>(json));
  }

  /** The public keys of every stored signing key (the JWKS). */
  async publicKeys(): Promise<JWK[]> {
    const jsons = await this.ctx.redis.hvals(this.ctx.keys.jwtKeys());
    return jsons.map((j) => parseJson<StoredSigningKey>(j).publicJwk);
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
    await this.ctx.redis.hset(this.ctx.keys.jwtKeys(), kid, JSON.stringify(stored));
    return { kid, publicJwk, privateJwk };
  }

  private open(stored: StoredSigningKey): SigningKey {
    return {
      kid: stored.kid,
      publicJwk: stored.publicJwk,
      privateJwk: parseJson<JWK>(this.box.open(stored.sealedPrivateJwk, stored.kid)),
    };
  }
}
