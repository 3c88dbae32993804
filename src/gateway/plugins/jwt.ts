// Bearer tokens. Tenant tokens: ES256 JWTs issued by POST /v1/tokens, signed with a key kept in
// Redis (every gateway verifies; JWKS at /.well-known/jwks.json), carrying the tenant, the
// access key and permissions no broader than the key's. A token dies with its key: each use
// checks the key still exists (cached, invalidated on revocation). Operator tokens: the static
// WHARF_ADMIN_TOKEN (constant-time compare) or a JWT with `role: admin` verified by
// WHARF_ADMIN_JWT_SECRET (HS256) or WHARF_ADMIN_JWKS_URL, carrying `exp` at most 24 h ahead. A
// token of one plane is refused on the other with InvalidToken.
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  SignJWT,
  createRemoteJWKSet,
  importJWK,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { WharfError } from '../../errors.js';
import {
  ACTIONS,
  TOKEN_ALG,
  intersectPermissions,
  type MetaStore,
  type Permission,
} from '../../meta/index.js';
import type { TenantPrincipal } from '../types.js';

export const TOKEN_ISSUER = 'wharf';
export const TOKEN_AUDIENCE = 'wharf-tenant';
const MAX_VERIFIED_TOKENS = 10_000;
/** An operator JWT whose expiry is further away than this is refused (24 h, and 5 minutes for
 *  an issuer's clock ahead of ours). */
export const MAX_OPERATOR_TOKEN_LIFETIME_MS = (24 * 60 + 5) * 60 * 1000;

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

interface TenantClaims extends JWTPayload {
  tid: string;
  perm: Permission[];
}

/** The token of an Authorization header of the Bearer scheme, or null for another scheme. The
 *  scheme name is case-insensitive (RFC 7235 §2.1): some clients send `bearer`. */
export function bearerToken(authorization: string): string | null {
  const match = /^bearer +(.*)$/is.exec(authorization);
  return match === null ? null : (match[1] ?? '').trim();
}

export class TokenService {
  private readonly imported = new Map<string, VerifyKey>();

  constructor(private readonly meta: MetaStore) {}

  async issue(
    principal: TenantPrincipal,
    ttlSeconds: number,
    requested: Permission[] | undefined,
    now = Date.now(),
  ): Promise<{ token: string; expiresAt: number; permissions: Permission[] }> {
    const permissions = intersectPermissions(
      requested ?? principal.permissions,
      principal.keyPermissions,
    );
    const key = await this.meta.signingKeys.current();
    const privateKey = await importJWK(key.privateJwk, TOKEN_ALG);
    const issuedAt = Math.floor(now / 1000);
    const expiresAtSeconds = issuedAt + ttlSeconds;
    const token = await new SignJWT({ tid: principal.tenantId, perm: permissions })
      .setProtectedHeader({ alg: TOKEN_ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(principal.accessKeyId)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAtSeconds)
      .sign(privateKey);
    return { token, expiresAt: expiresAtSeconds * 1000, permissions };
  }

  private readonly getKey: JWTVerifyGetKey = async (header) => {
    const kid = header.kid;
    if (kid === undefined) throw new WharfError('InvalidToken', 'the token names no key');
    const cached = this.imported.get(kid);
    if (cached !== undefined) return cached;
    let jwk = (await this.meta.publicSigningKeys()).find((k) => k.kid === kid);
    if (jwk === undefined) {
      // A key created by another gateway since our list was cached.
      jwk = (await this.meta.signingKeys.publicKeys()).find((k) => k.kid === kid);
    }
    if (jwk === undefined) throw new WharfError('InvalidToken', 'the token names an unknown key');
    const key = await importJWK(jwk, TOKEN_ALG);
    this.imported.set(kid, key);
    return key;
  };

  /**
   * Verified tokens by their exact text, so a client reusing a token pays the ECDSA check once.
   * Expiry is checked on every use; the key's existence (revocation) is checked below anyway.
   */
  private readonly verified = new Map<string, TenantClaims>();

  private async claimsOf(token: string, now: number): Promise<TenantClaims> {
    const cached = this.verified.get(token);
    if (cached !== undefined && cached.exp !== undefined && cached.exp * 1000 > now) return cached;
    let claims: TenantClaims;
    try {
      const result = await jwtVerify<TenantClaims>(token, this.getKey, {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        algorithms: [TOKEN_ALG],
        currentDate: new Date(now),
      });
      claims = result.payload;
    } catch (cause) {
      this.verified.delete(token);
      throw new WharfError('InvalidToken', 'the bearer token is invalid or expired', { cause });
    }
    if (this.verified.size >= MAX_VERIFIED_TOKENS) this.verified.clear();
    this.verified.set(token, claims);
    return claims;
  }

  async verify(token: string, now = Date.now()): Promise<TenantPrincipal> {
    const claims = await this.claimsOf(token, now);
    if (
      typeof claims.sub !== 'string' ||
      typeof claims.tid !== 'string' ||
      !isPermissions(claims.perm)
    ) {
      throw new WharfError('InvalidToken', 'the bearer token is not a tenant token');
    }
    const key = await this.meta.credential(claims.sub);
    if (key === null || key.tenantId !== claims.tid) {
      throw new WharfError('InvalidToken', 'the access key of this token is revoked');
    }
    const tenant = await this.meta.tenant(claims.tid);
    if (tenant === null) throw new WharfError('InvalidToken', 'the tenant of this token is gone');
    return {
      tenantId: claims.tid,
      tenant,
      accessKeyId: claims.sub,
      permissions: claims.perm,
      keyPermissions: key.permissions,
      via: 'token',
      ...(claims.exp === undefined ? {} : { expiresAtMs: claims.exp * 1000 }),
    };
  }
}

function isPermissions(value: unknown): value is Permission[] {
  return (
    Array.isArray(value) &&
    value.every(
      (p: unknown) =>
        typeof p === 'object' &&
        p !== null &&
        typeof (p as Permission).instance === 'string' &&
        Array.isArray((p as Permission).actions) &&
        (p as Permission).actions.every((a) => (ACTIONS as readonly string[]).includes(a)),
    )
  );
}

export interface AdminAuthConfig {
  adminToken?: string;
  adminJwtSecret?: string;
  adminJwksUrl?: string;
}

export class AdminAuthenticator {
  private readonly tokenDigest: Buffer | undefined;
  private readonly jwtKey: Uint8Array | JWTVerifyGetKey | undefined;

  constructor(config: AdminAuthConfig) {
    this.tokenDigest = config.adminToken === undefined ? undefined : digest(config.adminToken);
    if (config.adminJwtSecret !== undefined) {
      this.jwtKey = new TextEncoder().encode(config.adminJwtSecret);
    } else if (config.adminJwksUrl !== undefined) {
      this.jwtKey = createRemoteJWKSet(new URL(config.adminJwksUrl));
    }
  }

  /** Resolves when the Authorization header carries an operator credential. */
  async authenticate(authorization: string | undefined): Promise<void> {
    if (authorization === undefined || authorization === '') {
      throw new WharfError('MissingAuthentication', 'the operator plane needs a Bearer token');
    }
    const token = bearerToken(authorization);
    if (token === null) {
      throw new WharfError('InvalidToken', 'the operator plane takes only Bearer tokens');
    }
    // Compare digests: equal lengths, and the time taken says nothing about the token.
    if (this.tokenDigest !== undefined && timingSafeEqual(digest(token), this.tokenDigest)) return;
    if (this.jwtKey !== undefined && token.split('.').length === 3) {
      try {
        const { payload } =
          this.jwtKey instanceof Uint8Array
            ? await jwtVerify(token, this.jwtKey, {
                algorithms: ['HS256', 'HS384', 'HS512'],
                requiredClaims: ['exp'],
              })
            : await jwtVerify(token, this.jwtKey, { requiredClaims: ['exp'] });
        // a far expiry makes a leaked token an operator credential for that long
        const expMs = (payload.exp ?? 0) * 1000;
        if (payload.role === 'admin' && expMs <= Date.now() + MAX_OPERATOR_TOKEN_LIFETIME_MS) {
          return;
        }
      } catch {
        // fall through to the one refusal
      }
    }
    throw new WharfError('InvalidToken', 'the operator token is invalid');
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
