// Request bodies. Every content type is read as raw bytes (up to the body limit), because SigV4
// hashes exactly the received bytes; JSON is decoded only after authentication, by
// `decodeJsonBody`, so that an unauthenticated caller learns nothing from parse errors and the
// hash is never computed over a re-serialization. Refused: a Content-Encoding other than
// identity and a non-JSON Content-Type on a route that takes JSON (415), malformed JSON (400).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import secureJson from 'secure-json-parse';
import { WharfError } from '../../errors.js';

export const EMPTY_BODY = Buffer.alloc(0);

export function registerRawBody(app: FastifyInstance, bodyLimitBytes: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: bodyLimitBytes },
    (_request, body, done) => done(null, body),
  );
}

/** Whether a Content-Type header names JSON in UTF-8. */
export function isJsonContentType(header: string): boolean {
  const [media, ...params] = header.split(';');
  const type = media.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) return false;
  for (const param of params) {
    const [name, value] = param.split('=');
    if (name?.trim().toLowerCase() !== 'charset') continue;
    const charset = (value ?? '').trim().replace(/^"|"$/g, '').toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') return false;
  }
  return true;
}

/** Takes the raw bytes off `request.body` into `request.rawBody`. */
export function takeRawBody(request: FastifyRequest): Buffer {
  const raw = Buffer.isBuffer(request.body) ? request.body : EMPTY_BODY;
  request.rawBody = raw;
  request.body = undefined;
  return raw;
}

/** Puts the decoded JSON on `request.body` for routes that take one (`{}` when empty). */
export function decodeJsonBody(request: FastifyRequest, raw: Buffer): void {
  if (request.routeOptions.schema?.body === undefined) return;
  const encoding = request.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new WharfError('UnsupportedMediaType', `Content-Encoding ${encoding} is not supported`);
  }
  const contentType = request.headers['content-type'];
  if (contentType !== undefined && !isJsonContentType(contentType)) {
    throw new WharfError('UnsupportedMediaType', 'the body must be application/json (UTF-8)');
  }
  if (raw.length === 0) {
    request.body = {};
    return;
  }
  try {
    request.body = secureJson.parse(raw, undefined, {
      protoAction: 'remove',
      constructorAction: 'remove',
    }) as unknown;
  } catch (cause) {
    throw new WharfError('InvalidArgument', 'the body is not valid JSON', { cause });
  }
}
