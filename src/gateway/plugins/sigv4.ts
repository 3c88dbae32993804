// SigV4 authentication of tenant-plane requests: the order of checks follows AWS (shape of the
// header, date, scope, key, signature, then the tenant's state), each refusal with API.md's code.
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
import type { TenantPrincipal } from '../types.js';

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

export async function authenticateSigV4(
  request: FastifyRequest,
  authorization: string,
  raw: Buffer,
  meta: MetaStore,
  region: string,
  now = Date.now(),
): Promise<TenantPrincipal> {
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
  const payloadHash = raw.length === 0 ? EMPTY_SHA256 : sha256Hex(raw);
  const declared = request.headers['x-amz-content-sha256'];
  if (declared !== undefined && declared !== payloadHash) {
    throw new WharfError(
      'SignatureDoesNotMatch',
      'x-amz-content-sha256 is not the hash of the received body',
    );
  }
  const key = await meta.credential(auth.accessKeyId);
  if (key === null) {
    throw new WharfError('InvalidAccessKeyId', 'the access key is unknown or revoked');
  }
  const ok = verifySignature(
    {
      method: request.method,
      rawUrl: request.raw.url ?? '/',
      rawHeaders: request.raw.rawHeaders,
      amzDate,
      payloadHash,
    },
    auth,
    cachedSigningKey(key, auth.date, region),
  );
  if (!ok) throw new WharfError('SignatureDoesNotMatch', 'the signature does not match');
  const tenant = await meta.tenant(key.tenantId);
  if (tenant === null) {
    throw new WharfError('InvalidAccessKeyId', 'the access key is unknown or revoked');
  }
  return {
    tenantId: key.tenantId,
    tenant,
    accessKeyId: key.accessKeyId,
    permissions: key.permissions,
    keyPermissions: key.permissions,
    via: 'sigv4',
  };
}
