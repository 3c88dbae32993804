// SigV4 authentication of tenant-plane requests: the order of checks follows AWS (shape of the
// header, date, scope, key, signature, then the tenant's state), each refusal with API.md's code.
// Two stages: what the headers alone decide runs before the body is read (onRequest), the
// payload hash (and, unless the client declared it, the signature) once it is in.
// Signing keys are derived once per key and day and kept beside the cached credential.
import type { KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { WharfError } from '../../errors.js';
import type { MetaStore, ResolvedAccessKey } from '../../meta/index.js';
import {
  EMPTY_SHA256,
  MAX_SKEW_MS,
  SERVICE,
  parseAmzDate,
  parseAuthorization,
  sha256Hex,
  signingKey,
  verifySignature,
} from '../sigv4.js';
import { keyPrincipal } from '../key-principal.js';
import type { SigV4Pending, TenantPrincipal } from '../types.js';

const signingKeys = new WeakMap<ResolvedAccessKey, Map<string, KeyObject>>();

function cachedSigningKey(key: ResolvedAccessKey, date: string, region: string): KeyObject {
  let perScope = signingKeys.get(key);
  if (perScope === undefined) signingKeys.set(key, (perScope = new Map<string, KeyObject>()));
  const scope = `${date}/${region}`;
  let derived = perScope.get(scope);
  if (derived === undefined) {
    if (perScope.size > 4) perScope.clear();
    derived = signingKey(key.secret, date, region, SERVICE);
    perScope.set(scope, derived);
  }
  return derived;
}

const DECLARED_HASH = /^[0-9a-f]{64}$/;

/**
 * The checks of a SigV4 request that need no body, in AWS's order: shape of the header, date,
 * scope, key. When the client declared the payload hash (`x-amz-content-sha256`, a header, so
 * signed), the signature is verified here too, and only the received body's hash is left to
 * compare. Everything an unauthenticated caller can get wrong is refused before its body.
 */
export async function checkSigV4Headers(
  request: FastifyRequest,
  authorization: string,
  meta: MetaStore,
  region: string,
  now = Date.now(),
): Promise<SigV4Pending> {
  const auth = parseAuthorization(authorization);
  const amzDate = request.headers['x-amz-date'];
  if (typeof amzDate !== 'string') {
    throw new WharfError('IncompleteSignature', 'x-amz-date is required');
  }
  const dateMs = parseAmzDate(amzDate);
  if (Number.isNaN(dateMs)) {
    throw new WharfError('IncompleteSignature', 'x-amz-date must be yyyymmddThhmmssZ');
  }
  if (Math.abs(now - dateMs) > MAX_SKEW_MS) {
    throw new WharfError('RequestExpired', 'the request date is more than 15 minutes off');
  }
  if (auth.date !== amzDate.slice(0, 8)) {
    throw new WharfError('SignatureDoesNotMatch', 'the credential date is not the x-amz-date day');
  }
  if (auth.region !== region || auth.service !== SERVICE) {
    throw new WharfError(
      'SignatureDoesNotMatch',
      `the credential scope must be <date>/${region}/${SERVICE}/aws4_request`,
    );
  }
  const key = await meta.credential(auth.accessKeyId);
  if (key === null) {
    throw new WharfError('InvalidAccessKeyId', 'the access key is unknown or revoked');
  }
  const header = request.headers['x-amz-content-sha256'];
  const declaredHash = typeof header === 'string' ? header : undefined;
  const pending: SigV4Pending = { auth, amzDate, key, declaredHash, signatureVerified: false };
  if (declaredHash !== undefined && DECLARED_HASH.test(declaredHash)) {
    if (!signatureMatches(request, pending, declaredHash, region)) {
      throw new WharfError('SignatureDoesNotMatch', 'the signature does not match');
    }
    pending.signatureVerified = true;
  }
  return pending;
}

/** The rest of SigV4 once the body is in: its hash, the signature if not yet checked, the tenant. */
export async function completeSigV4(
  request: FastifyRequest,
  pending: SigV4Pending,
  raw: Buffer,
  meta: MetaStore,
  region: string,
): Promise<TenantPrincipal> {
  const payloadHash = raw.length === 0 ? EMPTY_SHA256 : sha256Hex(raw);
  if (pending.declaredHash !== undefined && pending.declaredHash !== payloadHash) {
    throw new WharfError(
      'SignatureDoesNotMatch',
      'x-amz-content-sha256 is not the hash of the received body',
    );
  }
  if (!pending.signatureVerified && !signatureMatches(request, pending, payloadHash, region)) {
    throw new WharfError('SignatureDoesNotMatch', 'the signature does not match');
  }
  return keyPrincipal(meta, pending.key, 'sigv4');
}

function signatureMatches(
  request: FastifyRequest,
  pending: SigV4Pending,
  payloadHash: string,
  region: string,
): boolean {
  return verifySignature(
    {
      method: request.method,
      rawUrl: request.raw.url ?? '/',
      rawHeaders: request.raw.rawHeaders,
      amzDate: pending.amzDate,
      payloadHash,
    },
    pending.auth,
    cachedSigningKey(pending.key, pending.auth.date, region),
  );
}

/** Both stages at once (the body already read): benchmarks and direct callers. */
export async function authenticateSigV4(
  request: FastifyRequest,
  authorization: string,
  raw: Buffer,
  meta: MetaStore,
  region: string,
  now = Date.now(),
): Promise<TenantPrincipal> {
  const pending = await checkSigV4Headers(request, authorization, meta, region, now);
  return completeSigV4(request, pending, raw, meta, region);
}
