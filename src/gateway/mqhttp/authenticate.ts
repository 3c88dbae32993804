// Authentication of MQ HTTP requests (`authorization: MQ <AccessKeyId>:<signature>`), in the
// protocol's order: header present and well-formed, `date` present, parseable and within 15
// minutes, key known, signature. The signature covers headers only (the body through
// `content-md5`), so all of it is checked before the body is read; the body's bytes are
// compared with `content-md5` by `checkContentMd5` once they are in. The same access keys as
// SigV4 (one key pair signs both schemes), resolved to the same principal.
import type { FastifyRequest } from 'fastify';
import { WharfError } from '../../errors.js';
import type { MetaStore } from '../../meta/index.js';
import { keyPrincipal } from '../key-principal.js';
import type { TenantPrincipal } from '../types.js';
import { mqRefusal } from './error-codes.js';
import {
  MQ_MAX_SKEW_MS,
  mqContentMd5,
  mqHeadersOf,
  mqSignature,
  parseMqAuthorization,
  signaturesEqual,
  signedResource,
  stringToSign,
} from './signature.js';

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function authenticateMqHttp(
  request: FastifyRequest,
  meta: MetaStore,
  now = Date.now(),
): Promise<TenantPrincipal> {
  const authorization = headerOf(request, 'authorization');
  if (authorization === undefined || authorization === '') {
    throw mqRefusal(
      'MissingAuthentication',
      'MissingAuthorizationHeader',
      'the Authorization header is required',
    );
  }
  const auth = parseMqAuthorization(authorization);
  if (auth === null) {
    throw mqRefusal(
      'IncompleteSignature',
      'InvalidAuthorizationHeader',
      'Authorization must be MQ <AccessKeyId>:<Signature>',
    );
  }
  const date = headerOf(request, 'date');
  if (date === undefined || date === '') {
    throw mqRefusal('IncompleteSignature', 'MissingDateHeader', 'the Date header is required');
  }
  const dateMs = Date.parse(date);
  if (Number.isNaN(dateMs)) {
    throw mqRefusal('IncompleteSignature', 'InvalidDateHeader', 'the Date header is not a date');
  }
  if (Math.abs(now - dateMs) > MQ_MAX_SKEW_MS) {
    throw mqRefusal(
      'RequestExpired',
      'TimeExpired',
      'the request date is more than 15 minutes off',
    );
  }
  const key = await meta.credential(auth.accessKeyId);
  if (key === null) {
    throw new WharfError('InvalidAccessKeyId', 'the access key is unknown or revoked');
  }
  const expected = mqSignature(
    key.secret,
    stringToSign({
      method: request.method,
      contentMd5: headerOf(request, 'content-md5') ?? '',
      contentType: headerOf(request, 'content-type') ?? '',
      date,
      mqHeaders: mqHeadersOf(request.headers),
      resource: signedResource(request.raw.url ?? '/'),
    }),
  );
  if (!signaturesEqual(expected, auth.signature)) {
    throw new WharfError('SignatureDoesNotMatch', 'the signature does not match');
  }
  return keyPrincipal(meta, key, 'mqhttp');
}

/** Refuses a body whose bytes are not what `content-md5` (when sent) says. */
export function checkContentMd5(request: FastifyRequest, raw: Buffer): void {
  const declared = headerOf(request, 'content-md5');
  if (declared === undefined) return;
  if (!signaturesEqual(mqContentMd5(raw), declared.trim())) {
    throw mqRefusal('InvalidArgument', 'InvalidDigest', 'content-md5 is not the body’s');
  }
}
