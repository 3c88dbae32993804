// Request bodies. Every content type is read as raw bytes (up to the body limit), because SigV4
// hashes exactly the received bytes; JSON is decoded only after authentication, by
// `decodeJsonBody`, so that an unauthenticated caller learns nothing from parse errors and the
// hash is never computed over a re-serialization. Refused: a Content-Encoding other than
// identity and a non-JSON Content-Type on a route that takes JSON (415), malformed JSON (400).
// Memory: a body is read only after the credential was checked from the headers (onRequest
// hooks run before this parser), and the bytes of all bodies being held at once are bounded by
// one process-wide `BodyBudget` (503 past it): a declared Content-Length is reserved before a
// byte is read, a chunked body chunk by chunk, and the reservation is returned when the answer
// is done or the connection closes. Public routes take no body: theirs is left unread.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import secureJson from 'secure-json-parse';
import { WharfError } from '../../errors.js';
import { TenantShares } from '../tenant-shares.js';

export const EMPTY_BODY = Buffer.alloc(0);

/** The bytes of request bodies this process holds at once, over every connection, and of
 *  each tenant's: once the budget is half full, one tenant (or a caller with one of its key ids
 *  and no secret, whose signature waits for the body) holds no more than `tenantShareBytes`
 *  (tenant-shares.ts), so it cannot fill the budget that every other tenant's publishes need. */
export class BodyBudget {
  private reserved = 0;
  private readonly shares: TenantShares;

  constructor(
    readonly limitBytes: number,
    private readonly onChange: (inFlightBytes: number) => void = () => undefined,
    /** The share is a quarter of the budget, and at least one body of this size. */
    largestBodyBytes = 0,
  ) {
    this.shares = new TenantShares(limitBytes, largestBodyBytes);
  }

  get tenantShareBytes(): number {
    return this.shares.shareBytes;
  }

  /** Takes `bytes` from the budget (and from `tenant`'s share): 'full' when they do not fit the
   *  budget, 'share' when they do not fit the tenant's share — checked only once the budget would
   *  be more than half full: a tenant alone uses up to half of it, and the other half stays for
   *  the rest. */
  tryReserve(bytes: number, tenant?: string): 'ok' | 'full' | 'share' {
    if (this.reserved + bytes > this.limitBytes) return 'full';
    if (tenant !== undefined) {
      if (bytes > this.shares.room(this.reserved, tenant)) return 'share';
      this.shares.add(tenant, bytes);
    }
    this.reserved += bytes;
    this.onChange(this.reserved);
    return 'ok';
  }

  release(bytes: number, tenant?: string): void {
    if (bytes === 0) return;
    this.reserved = Math.max(0, this.reserved - bytes);
    if (tenant !== undefined) this.shares.add(tenant, -bytes);
    this.onChange(this.reserved);
  }

  get inFlightBytes(): number {
    return this.reserved;
  }
}

/** Retry hint of a body refused for lack of budget: bodies in flight finish within seconds. */
const BUDGET_RETRY_AFTER_MS = 1000;

/** Refusals of a body fastify answers with `connection: close`, although the connection is whole
 *  (the rest of the body is read and dropped after the answer): see error-handler. */
const refusalsKeepingConnection = new WeakSet<WharfError>();

/** Whether `err` refused a body (too large, over the budget) on a connection that stays whole. */
export function keepsConnection(err: unknown): boolean {
  return err instanceof WharfError && refusalsKeepingConnection.has(err);
}

function keeping(err: WharfError): WharfError {
  refusalsKeepingConnection.add(err);
  return err;
}

function overBudget(budget: BodyBudget): WharfError {
  return keeping(
    new WharfError(
      'Unavailable',
      `the gateway is receiving ${budget.limitBytes} bytes of request bodies already; retry shortly`,
      { retryAfterMs: BUDGET_RETRY_AFTER_MS },
    ),
  );
}

function overShare(budget: BodyBudget): WharfError {
  return keeping(
    new WharfError(
      'Throttled',
      `this tenant is sending ${budget.tenantShareBytes} bytes of request bodies to this ` +
        "gateway already (its share of the gateway's budget); retry shortly",
      { retryAfterMs: BUDGET_RETRY_AFTER_MS },
    ),
  );
}

/** A body that goes this long without a byte is given up (400): it held its reservation. */
export const BODY_IDLE_MS = 15_000;

function tooLarge(limitBytes: number): WharfError {
  return keeping(
    new WharfError(
      'MessageTooLarge',
      `the request body is over the limit (${+(limitBytes / (1024 * 1024)).toFixed(2)} MiB)`,
    ),
  );
}

export function registerRawBody(
  app: FastifyInstance,
  bodyLimitBytes: number,
  budget: BodyBudget,
  bodyIdleMs = BODY_IDLE_MS,
): void {
  // `Expect: 100-continue` (curl sends it for bodies over 1 MiB): node would say "continue" at
  // once; instead it is said when the body is about to be read, after the credential was
  // checked, so a refused client never sends its body at all.
  const awaitingContinue = new WeakMap<IncomingMessage, ServerResponse>();
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.set(req, res);
    app.server.emit('request', req, res);
  });
  app.decorateRequest('bodyBytesReserved', 0);
  app.addHook('onRequest', (request, reply, done) => {
    // 'close' follows both the end of the answer and a connection lost on the way.
    reply.raw.once('close', () => releaseBody(request, budget));
    done();
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    const res = awaitingContinue.get(request.raw);
    readBody(request, payload, bodyLimitBytes, budget, bodyIdleMs, () => {
      awaitingContinue.delete(request.raw);
      res?.writeContinue();
    }).then(
      (body) => done(null, body),
      (err: Error) => done(err, undefined),
    );
  });
}

/** The tenant each request holding a reservation reserved for (released under the same). */
const reservedFor = new WeakMap<FastifyRequest, string | undefined>();

function releaseBody(request: FastifyRequest, budget: BodyBudget): void {
  budget.release(request.bodyBytesReserved, reservedFor.get(request));
  request.bodyBytesReserved = 0;
}

/** The tenant whose share a body counts against: the verified credential's, or the one whose
 *  key id a SigV4 request names while its signature waits for the body. */
function bodyTenant(request: FastifyRequest): string | undefined {
  return request.principal?.tenantId ?? request.sigv4?.key.tenantId;
}

/** Reserves `bytes` for the request's body, or the refusal (over the budget or the share). */
function reserve(request: FastifyRequest, budget: BodyBudget, bytes: number): WharfError | null {
  const tenant = request.bodyBytesReserved === 0 ? bodyTenant(request) : reservedFor.get(request);
  const answer = budget.tryReserve(bytes, tenant);
  if (answer === 'full') return overBudget(budget);
  if (answer === 'share') return overShare(budget);
  reservedFor.set(request, tenant);
  request.bodyBytesReserved += bytes;
  return null;
}

function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  // node's HTTP parser has already refused a malformed Content-Length.
  return Number(header);
}

/** The body's bytes, read within the limit and the budget (public routes: none, unread). */
function readBody(
  request: FastifyRequest,
  payload: IncomingMessage,
  bodyLimitBytes: number,
  budget: BodyBudget,
  bodyIdleMs: number,
  sayContinue: () => void,
): Promise<Buffer> {
  // Public routes (and unknown paths) take no body: it is left unread here, and read and dropped
  // after the error answer of an unknown path (see error-handler's holdUnreadBody).
  const plane = request.routeOptions.config?.plane ?? 'public';
  if (plane === 'public') return Promise.resolve(EMPTY_BODY);
  // A body larger than the whole budget could never be read: too large, not "retry later".
  const limitBytes = Math.min(bodyLimitBytes, budget.limitBytes);
  const declared = declaredLength(request);
  if (declared !== undefined && declared > limitBytes) return Promise.reject(tooLarge(limitBytes));
  const refused = declared === undefined ? null : reserve(request, budget, declared);
  if (refused !== null) return Promise.reject(refused);
  sayContinue();
  return new Promise((resolve, reject) => {
    // With a Content-Length the body goes straight into one buffer of that size (no copies, no
    // concat); a chunked body is gathered and reserved as it comes.
    const whole = declared === undefined ? undefined : Buffer.allocUnsafe(declared);
    const chunks: Buffer[] = [];
    let received = 0;
    // A client that stops sending holds its reservation until the request timeout: bounded
    // sooner (the answer is 400; the connection closes LINGER_MS later unless the body resumes)
    const idle = setTimeout(
      () =>
        finish(
          new WharfError(
            'InvalidArgument',
            `no byte of the request body came for ${bodyIdleMs / 1000} s`,
          ),
        ),
      bodyIdleMs,
    );
    const finish = (err: Error | undefined, body?: Buffer) => {
      clearTimeout(idle);
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      if (err === undefined) return resolve(body!);
      releaseBody(request, budget);
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      idle.refresh();
      received += chunk.length;
      if (received > limitBytes) return finish(tooLarge(limitBytes));
      if (whole !== undefined) {
        if (received > whole.length) return finish(lengthMismatch());
        chunk.copy(whole, received - chunk.length);
      } else {
        const refusedChunk = reserve(request, budget, chunk.length);
        if (refusedChunk !== null) return finish(refusedChunk);
        chunks.push(chunk);
      }
    };
    const onEnd = () => {
      if (whole !== undefined) {
        finish(received === whole.length ? undefined : lengthMismatch(), whole);
      } else finish(undefined, Buffer.concat(chunks, received)); // a copy: no views of socket reads
    };
    const onError = (err: Error) =>
      finish(new WharfError('InvalidArgument', 'the request body was cut off', { cause: err }));
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.resume();
  });
}

function lengthMismatch(): WharfError {
  return new WharfError('InvalidArgument', 'the body is not as long as its Content-Length');
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
  // Decoding would replace invalid bytes, and encoding a lone surrogate escape (\ud800), with
  // U+FFFD: a message stored unlike the one sent (two property names made one, a key no query
  // finds). Refused instead.
  if (!isUtf8(raw)) throw new WharfError('InvalidArgument', 'the body is not valid UTF-8');
  try {
    // refused, not removed: a message property named __proto__ would be dropped unnoticed
    request.body = secureJson.parse(raw, undefined, {
      protoAction: 'error',
      constructorAction: 'error',
    }) as unknown;
  } catch (cause) {
    const forbidden = cause instanceof SyntaxError && /forbidden/.test(cause.message);
    throw new WharfError(
      'InvalidArgument',
      forbidden
        ? 'the body names a property __proto__ (or constructor.prototype), which is not accepted'
        : 'the body is not valid JSON',
      { cause },
    );
  }
  if (mayHoldSurrogateEscape(raw) && holdsLoneSurrogate(request.body)) {
    throw new WharfError(
      'InvalidArgument',
      'the body holds a lone UTF-16 surrogate (\\ud800-\\udfff unpaired), which is not text',
    );
  }
}

/** Whether `raw` has a `\\uD…` escape (JSON's only way to a lone surrogate from valid UTF-8). */
function mayHoldSurrogateEscape(raw: Buffer): boolean {
  for (let at = raw.indexOf('\\u'); at >= 0; at = raw.indexOf('\\u', at + 2)) {
    const digit = raw[at + 2];
    if (digit === 0x64 || digit === 0x44) return true; // d or D
  }
  return false;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string of `value` (a property name included) has an unpaired surrogate. Walks
 *  with its own stack: JSON.parse takes nesting deeper than a recursion could follow. */
function holdsLoneSurrogate(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      if (LONE_SURROGATE.test(item)) return true;
    } else if (Array.isArray(item)) {
      for (const element of item) pending.push(element);
    } else if (typeof item === 'object' && item !== null) {
      for (const [name, field] of Object.entries(item)) {
        if (LONE_SURROGATE.test(name)) return true;
        pending.push(field);
      }
    }
  }
  return false;
}
