// The MQ HTTP signature scheme (Aliyun MQ HTTP SDKs): `authorization: MQ <AccessKeyId>:<sig>`,
// sig = base64(HMAC-SHA1(key = AccessKeySecret, string-to-sign)), both as UTF-8. The string to
// sign is `METHOD\nCONTENT-MD5\nCONTENT-TYPE\nDATE\n`, then each `x-mq-*` header as
// `name:value\n` (lowercased names, sorted), then the resource: the request target exactly as
// sent (still percent-encoded, query in received order) from its first `/topics/` on.
// `content-md5` is base64 of the lowercase *hex* MD5 of the body (not RFC 1864). Pure functions.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const MQ_AUTH_PREFIX = 'MQ ';
/** What the SDKs send in `x-mq-version`. */
export const MQ_VERSION = '2015-06-06';
/** Largest allowed distance between the request's `date` and the server clock. */
export const MQ_MAX_SKEW_MS = 15 * 60 * 1000;

export interface MqSignedRequest {
  method: string;
  /** The `content-md5` header, '' when absent. */
  contentMd5: string;
  /** The `content-type` header, '' when absent. */
  contentType: string;
  date: string;
  /** `x-mq-*` headers by lowercased name. */
  mqHeaders: Readonly<Record<string, string>>;
  /** From the first `/topics/` of the target on, as sent. */
  resource: string;
}

export interface MqAuthorization {
  accessKeyId: string;
  signature: string;
}

const AUTHORIZATION = /^MQ ([^:\s]+):([A-Za-z0-9+/]+={0,2})$/;

/** `MQ <ak>:<signature>` split, or null when it is not of that shape. */
export function parseMqAuthorization(header: string): MqAuthorization | null {
  const match = AUTHORIZATION.exec(header.trim());
  return match === null ? null : { accessKeyId: match[1], signature: match[2] };
}

/** The `x-mq-*` headers of a request, by lowercased name (node lowercases them already). */
export function mqHeadersOf(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-mq-') || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}

/** The signed resource of a request target: from its first `/topics/` on (whole target if none). */
export function signedResource(rawUrl: string): string {
  const at = rawUrl.indexOf('/topics/');
  return at < 0 ? rawUrl : rawUrl.slice(at);
}

export function stringToSign(req: MqSignedRequest): string {
  const mq = Object.keys(req.mqHeaders)
    .map((name) => name.toLowerCase())
    .sort()
    .map((name) => `${name}:${req.mqHeaders[name]}\n`)
    .join('');
  return `${req.method}\n${req.contentMd5}\n${req.contentType}\n${req.date}\n${mq}${req.resource}`;
}

export function mqSignature(secret: string, toSign: string): string {
  return createHmac('sha1', Buffer.from(secret, 'utf8'))
    .update(Buffer.from(toSign, 'utf8'))
    .digest('base64');
}

/** The `authorization` header value for a request (what the SDK sends). */
export function mqAuthorization(accessKeyId: string, secret: string, req: MqSignedRequest): string {
  return `${MQ_AUTH_PREFIX}${accessKeyId}:${mqSignature(secret, stringToSign(req))}`;
}

/** Compares two signatures in constant time (for equal lengths). */
export function signaturesEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The SDK's `content-md5`: base64 of the lowercase hex MD5 of the body. */
export function mqContentMd5(body: Buffer): string {
  return Buffer.from(createHash('md5').update(body).digest('hex'), 'utf8').toString('base64');
}

/** The protocol's `MessageBodyMD5`: uppercase hex MD5 of the body's bytes. */
export function messageBodyMd5(body: Buffer): string {
  return createHash('md5').update(body).digest('hex').toUpperCase();
}
