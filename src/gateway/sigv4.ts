// AWS Signature Version 4, the server side: parse the Authorization header, rebuild the
// canonical request from what was received, and compare signatures in constant time. Pure
// functions, no I/O. The canonical request is the one of AWS's specification for services other
// than S3, which the `aws4` package, curl and @smithy/signature-v4 produce:
//   METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
// where the canonical URI is the received path with `.`/`..`/empty segments resolved and each
// segment URI-encoded again (the wire form is encoded once, so names are encoded twice), the
// query is decoded, re-encoded (RFC 3986) and sorted, and the payload hash is the SHA-256 of the
// received bytes.
import * as crypto from 'node:crypto';
import {
  createHash,
  createHmac,
  createSecretKey,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { WharfError } from '../errors.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';

type OneShotHash = (algorithm: string, data: string | Buffer, encoding: 'hex') => string;
/** crypto.hash (Node ≥ 20.12): one call, no Hash object, for the small inputs signed here. */
const oneShotHash = (crypto as unknown as { hash?: OneShotHash }).hash;
export const SERVICE = 'mq';
/** How far the request's x-amz-date may be from the server's clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface ParsedAuthorization {
  accessKeyId: string;
  /** yyyymmdd of the credential scope. */
  date: string;
  region: string;
  service: string;
  /** `date/region/service/aws4_request` */
  scope: string;
  signedHeaders: string[];
  signature: string;
}

const SCOPE_PART = /^[A-Za-z0-9_-]{1,64}$/;
const ACCESS_KEY = /^[A-Za-z0-9_+=.@-]{1,128}$/;
const SIGNATURE = /^[0-9a-f]{64}$/;
const HEADER_LIST = /^[a-z0-9!#$%&'*+.^_`|~-]+(;[a-z0-9!#$%&'*+.^_`|~-]+)*$/;

/** The value of `name=` in the comma-separated parameters, or undefined. */
function param(params: string, name: string): string | undefined {
  let at = params.indexOf(`${name}=`);
  while (at > 0 && params[at - 1] !== ' ' && params[at - 1] !== ',') {
    at = params.indexOf(`${name}=`, at + 1);
  }
  if (at < 0) return undefined;
  const start = at + name.length + 1;
  const end = params.indexOf(',', start);
  return (end < 0 ? params.slice(start) : params.slice(start, end)).trim();
}

function incomplete(message: string): WharfError {
  return new WharfError('IncompleteSignature', message);
}

/** Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` (hot path: no Map). */
export function parseAuthorization(header: string): ParsedAuthorization {
  if (!header.startsWith(`${ALGORITHM} `)) {
    throw incomplete(`the Authorization scheme must be ${ALGORITHM}`);
  }
  const params = header.slice(ALGORITHM.length);
  const credential = param(params, 'Credential');
  const signedHeaders = param(params, 'SignedHeaders');
  const signature = param(params, 'Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    throw incomplete('Authorization needs Credential, SignedHeaders and Signature');
  }
  const parts = credential.split('/');
  if (
    parts.length !== 5 ||
    parts[4] !== 'aws4_request' ||
    !ACCESS_KEY.test(parts[0]) ||
    parts[1].length !== 8 ||
    !/^\d{8}$/.test(parts[1]) ||
    !SCOPE_PART.test(parts[2]) ||
    !SCOPE_PART.test(parts[3])
  ) {
    throw incomplete('Credential must be <AccessKeyId>/<yyyymmdd>/<region>/<service>/aws4_request');
  }
  if (!SIGNATURE.test(signature)) throw incomplete('Signature must be 64 lowercase hex digits');
  if (!HEADER_LIST.test(signedHeaders)) {
    throw incomplete('SignedHeaders must be lowercase header names separated by ;');
  }
  const headers = signedHeaders.split(';');
  if (!headers.includes('host')) throw incomplete('SignedHeaders must include host');
  if (!headers.includes('x-amz-date')) throw incomplete('SignedHeaders must include x-amz-date');
  const [accessKeyId, date, region, service] = parts as [string, string, string, string];
  return {
    accessKeyId,
    date,
    region,
    service,
    scope: `${date}/${region}/${service}/aws4_request`,
    signedHeaders: headers,
    signature,
  };
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Epoch ms of an `x-amz-date` (`yyyymmddThhmmssZ`), or NaN. */
export function parseAmzDate(value: string): number {
  const m = AMZ_DATE.exec(value);
  if (m === null) return NaN;
  const [year, month, day, hour, minute, second] = [+m[1], +m[2], +m[3], +m[4], +m[5], +m[6]];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 20240231 over to March, 25:00 to the next day and month 00 back to the
  // December before: refuse what rolled.
  const d = new Date(ms);
  return d.getUTCDate() === day &&
    month >= 1 &&
    month <= 12 &&
    hour < 24 &&
    minute < 60 &&
    second < 60
    ? ms
    : NaN;
}

const UNRESERVED = /^[A-Za-z0-9_.~-]*$/;

export function encodeRfc3986(value: string): string {
  if (UNRESERVED.test(value)) return value;
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The canonical URI of a received (once-encoded) path. */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(encodeRfc3986(segment));
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return `/${segments.join('/')}${trailing}`;
}

function decodeQueryPart(part: string): string {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return part;
  }
}

/** The canonical query of a received query string (without `?`). */
export function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([encodeRfc3986(decodeQueryPart(key)), encodeRfc3986(decodeQueryPart(value))]);
  }
  pairs.sort((a, b) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0,
  );
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * How signers trim and collapse a header value's whitespace, which SigV4 leaves to "trimall"
 * (sequential spaces to one). They agree on ASCII; on other whitespace (a non-breaking space,
 * byte 0xA0, is `\s` to JavaScript) they differ: `aws` is what most send (trimmed, runs of two
 * or more collapsed), `all` what `aws4` sends (any whitespace to one space), `ascii` what
 * `@smithy/signature-v4` sends (only CR, LF, spaces and tabs trimmed and collapsed).
 */
export type HeaderTrim = 'aws' | 'all' | 'ascii';

const TRIMS: Record<HeaderTrim, (value: string) => string> = {
  aws: (value) => {
    const trimmed = value.trim();
    return /\s\s|[\t\r\n]/.test(trimmed) ? trimmed.replace(/\s+/g, ' ') : trimmed;
  },
  all: (value) => value.trim().replace(/\s+/g, ' '),
  ascii: (value) =>
    value
      .replace(/[\r\n]/g, ' ')
      .replace(/[ \t]+/g, ' ')
      .replace(/^ | $/g, ''),
};

/**
 * `name:value\n` for each signed header, from node's rawHeaders (so repeated headers are joined
 * with `,` as SigV4 wants, not with node's `, `); values trimmed, inner whitespace collapsed.
 */
export function canonicalHeaders(
  rawHeaders: readonly string[],
  signedHeaders: string[],
  trim: HeaderTrim = 'aws',
): string {
  const values = new Map<string, string[]>();
  for (const name of signedHeaders) values.set(name, []);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const list = values.get(rawHeaders[i].toLowerCase());
    if (list === undefined) continue;
    list.push(TRIMS[trim](rawHeaders[i + 1]));
  }
  let out = '';
  for (const name of signedHeaders) out += `${name}:${values.get(name)!.join(',')}\n`;
  return out;
}

/** Whitespace other than space and tab in a header value (0xA0, 0x85, VT, FF read as latin1),
 *  where the signers' trims differ. */
const OTHER_WHITESPACE = /[\u000b\u000c\u0085\u00a0]/;

export interface CanonicalRequestParts {
  method: string;
  uri: string;
  query: string;
  headers: string;
  signedHeaders: string;
  payloadHash: string;
}

export function canonicalRequest(p: CanonicalRequestParts): string {
  return `${p.method}\n${p.uri}\n${p.query}\n${p.headers}\n${p.signedHeaders}\n${p.payloadHash}`;
}

export function sha256Hex(data: string | Buffer): string {
  return oneShotHash === undefined
    ? createHash('sha256').update(data).digest('hex')
    : oneShotHash('sha256', data, 'hex');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/** The scope's signing key, as a KeyObject so that each HMAC with it skips key preparation. */
export function signingKey(secret: string, date: string, region: string, service: string) {
  const kDate = createHmac('sha256', `AWS4${secret}`).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createSecretKey(createHmac('sha256', kService).update('aws4_request').digest());
}

export function signatureOf(key: KeyObject, toSign: string): Buffer {
  return createHmac('sha256', key).update(toSign).digest();
}

export interface ReceivedRequest {
  method: string;
  /** The request target as received: path and query, encoded as on the wire. */
  rawUrl: string;
  rawHeaders: readonly string[];
  amzDate: string;
  payloadHash: string;
}

/**
 * Whether `auth.signature` signs `request` under `key` (the signing key of the scope). The
 * AWS canonical form is tried first; then the wire path and query as received, which is what
 * curl before 8.x signs (no re-encoding, unsorted query) — both describe the same bytes, so the
 * fallback widens nothing an attacker controls.
 */
export function verifySignature(
  request: ReceivedRequest,
  auth: ParsedAuthorization,
  key: KeyObject,
): boolean {
  const q = request.rawUrl.indexOf('?');
  const rawPath = q < 0 ? request.rawUrl : request.rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : request.rawUrl.slice(q + 1);
  const expected = Buffer.from(auth.signature, 'hex');
  const signed = auth.signedHeaders.join(';');
  const attempt = (uri: string, query: string, headers: string) => {
    const canonical = canonicalRequest({
      method: request.method,
      uri,
      query,
      headers,
      signedHeaders: signed,
      payloadHash: request.payloadHash,
    });
    const actual = signatureOf(key, stringToSign(request.amzDate, auth.scope, canonical));
    return timingSafeEqual(actual, expected);
  };
  const uri = canonicalUri(rawPath);
  const query = canonicalQuery(rawQuery);
  const headers = canonicalHeaders(request.rawHeaders, auth.signedHeaders);
  const withHeaders = (h: string) =>
    attempt(uri, query, h) ||
    (!(uri === rawPath && query === rawQuery) && attempt(rawPath, rawQuery, h));
  if (withHeaders(headers)) return true;
  // the other signers' trims, only where they read the values otherwise
  if (!request.rawHeaders.some((value, i) => i % 2 === 1 && OTHER_WHITESPACE.test(value))) {
    return false;
  }
  const tried = new Set([headers]);
  for (const trim of ['all', 'ascii'] as const) {
    const other = canonicalHeaders(request.rawHeaders, auth.signedHeaders, trim);
    if (tried.has(other)) continue;
    tried.add(other);
    if (withHeaders(other)) return true;
  }
  return false;
}
