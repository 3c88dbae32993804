// HTTP is decided here, once: every WharfError code → status and the public code put in the
// body, fastify's own errors mapped onto API.md's codes, 404 for unknown routes and 405 (with
// `allow`) for a known path with another method, and errors below the framework (oversized
// headers, broken HTTP) answered in the same shape when the socket still takes it. Anything
// else is a 500, logged once with its stack; the body never carries internals. The MQ HTTP
// routes (and paths under /topics/) get the same mapping answered in their XML shape.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { WharfError, isWharfError, type ErrorCode } from '../../errors.js';
import { isRedisUnavailable } from '../../meta/index.js';
import {
  isMqHttpRequest,
  isMqHttpTarget,
  mqErrorAnswer,
  sendMqError,
} from '../mqhttp/error-codes.js';
import { keepsConnection } from './body.js';

interface HttpError {
  status: number;
  /** The code clients see; internal codes surface as an API code. */
  code: ErrorCode;
}

/** Every code of ERROR_CODES, with its answer. Typed as a full record: a new code must be mapped. */
export const HTTP_ERRORS: Record<ErrorCode, HttpError> = {
  InvalidArgument: { status: 400, code: 'InvalidArgument' },
  InvalidReceiptHandle: { status: 400, code: 'InvalidReceiptHandle' },
  MissingAuthentication: { status: 401, code: 'MissingAuthentication' },
  IncompleteSignature: { status: 403, code: 'IncompleteSignature' },
  SignatureDoesNotMatch: { status: 403, code: 'SignatureDoesNotMatch' },
  RequestExpired: { status: 403, code: 'RequestExpired' },
  InvalidAccessKeyId: { status: 403, code: 'InvalidAccessKeyId' },
  InvalidToken: { status: 403, code: 'InvalidToken' },
  AccessDenied: { status: 403, code: 'AccessDenied' },
  QuotaExceeded: { status: 403, code: 'QuotaExceeded' },
  InstanceNotFound: { status: 404, code: 'InstanceNotFound' },
  TopicNotFound: { status: 404, code: 'TopicNotFound' },
  GroupNotFound: { status: 404, code: 'GroupNotFound' },
  MessageNotFound: { status: 404, code: 'MessageNotFound' },
  TenantNotFound: { status: 404, code: 'TenantNotFound' },
  TransactionNotFound: { status: 404, code: 'TransactionNotFound' },
  AlarmNotFound: { status: 404, code: 'AlarmNotFound' },
  AccessKeyNotFound: { status: 404, code: 'AccessKeyNotFound' },
  NotFound: { status: 404, code: 'NotFound' },
  MethodNotAllowed: { status: 405, code: 'MethodNotAllowed' },
  AlreadyExists: { status: 409, code: 'AlreadyExists' },
  MessageTypeMismatch: { status: 409, code: 'MessageTypeMismatch' },
  Conflict: { status: 409, code: 'Conflict' },
  ReceiptHandleExpired: { status: 410, code: 'ReceiptHandleExpired' },
  MessageTooLarge: { status: 413, code: 'MessageTooLarge' },
  UriTooLong: { status: 414, code: 'UriTooLong' },
  UnsupportedMediaType: { status: 415, code: 'UnsupportedMediaType' },
  Throttled: { status: 429, code: 'Throttled' },
  HeadersTooLarge: { status: 431, code: 'HeadersTooLarge' },
  Internal: { status: 500, code: 'Internal' },
  Unavailable: { status: 503, code: 'Unavailable' },
  // internal codes of the store and the cluster
  DiskFull: { status: 503, code: 'Unavailable' },
  AppendQueueFull: { status: 503, code: 'Unavailable' },
  StoreClosed: { status: 503, code: 'Unavailable' },
  RecordTooLarge: { status: 413, code: 'MessageTooLarge' },
  OffsetExpired: { status: 404, code: 'MessageNotFound' },
  CorruptRecord: { status: 500, code: 'Internal' },
  UnsupportedFormat: { status: 500, code: 'Internal' },
  CorruptIndex: { status: 500, code: 'Internal' },
  IoError: { status: 503, code: 'Unavailable' },
  DirLocked: { status: 503, code: 'Unavailable' },
};

/** The codes a client can see in an error body (the OpenAPI enum). */
export const PUBLIC_ERROR_CODES: ErrorCode[] = [
  ...new Set(Object.values(HTTP_ERRORS).map((e) => e.code)),
];

export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

/** Default retry-after (seconds) for retriable refusals that carry no hint of their own. */
const DEFAULT_RETRY_AFTER_S = 1;

/** The WharfError a thrown value stands for, with the status it is answered with. */
export function toWharfError(err: unknown): {
  error: WharfError;
  status: number;
  unexpected: boolean;
} {
  if (isWharfError(err)) {
    const http = HTTP_ERRORS[err.code];
    const unexpected = http.status >= 500 && http.code === 'Internal';
    const error =
      http.code === err.code
        ? err
        : new WharfError(http.code, unexpected ? 'internal error' : err.message, {
            cause: err,
            ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
          });
    return { error, status: http.status, unexpected };
  }
  if (isRedisUnavailable(err)) {
    return wrap('Unavailable', 'the metadata store is unreachable; retry shortly', 503, err);
  }
  const fst = err as Partial<FastifyError> | null;
  const code = typeof fst?.code === 'string' ? fst.code : '';
  if (fst !== null && fst?.validation !== undefined) {
    return wrap('InvalidArgument', fst.message ?? 'invalid request', 400, err);
  }
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return wrap('MessageTooLarge', 'the request body is over the limit (8 MiB)', 413, err);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return wrap('UnsupportedMediaType', 'the Content-Type is not supported', 415, err);
    case 'FST_ERR_BAD_URL':
      return wrap('InvalidArgument', 'the URL is malformed', 400, err);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      // routing comes before the onRequest check of the target's length: the same answer
      return wrap('UriTooLong', 'the request target is over 8 KiB', 414, err);
  }
  if (code.startsWith('FST_ERR_CTP_') || (code.startsWith('FST_') && isClientStatus(fst))) {
    return wrap('InvalidArgument', fst?.message ?? 'invalid request', 400, err);
  }
  if (err instanceof SyntaxError && isClientStatus(fst)) {
    return wrap('InvalidArgument', 'malformed request', 400, err);
  }
  return { ...wrap('Internal', 'internal error', 500, err), unexpected: true };
}

function isClientStatus(err: Partial<FastifyError> | null): boolean {
  const status = err?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function wrap(code: ErrorCode, message: string, status: number, cause: unknown) {
  return { error: new WharfError(code, message, { cause }), status, unexpected: false };
}

export function errorBody(error: WharfError, requestId: string): ErrorBody {
  return { error: { code: error.code, message: error.message, requestId } };
}

export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  err: unknown,
): FastifyReply {
  const { error, status, unexpected } = toWharfError(err);
  if (unexpected) request.log.error({ err }, 'unexpected error');
  else if (status >= 500) request.log.warn({ code: error.code, err: error.message }, 'refused');
  const retryAfterMs =
    error.retryAfterMs ??
    (error.code === 'Throttled' || status === 503 ? DEFAULT_RETRY_AFTER_S * 1000 : undefined);
  if (retryAfterMs !== undefined) {
    reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
  reply.header('x-request-id', request.id);
  if (!request.raw.complete) holdUnreadBody(request, reply, keepsConnection(err));
  if (isMqHttpRequest(request)) return sendMqError(request, reply, error);
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send(errorBody(error, request.id));
}

/** How long a connection whose body was refused is kept, unread, after the answer; and how
 *  long a body being read and dropped may go without a byte. */
export const LINGER_MS = 5_000;

/** A body refused as too large or over the budget (its credential held) is read and dropped
 *  after the answer up to this size; */
export const DISCARD_BYTES = 64 * 1024 * 1024;

/** any other refused body (bad credentials, an unknown path, Redis away) up to the body limit
 *  a client may send: an unauthenticated caller makes the gateway read no more than that. */
export const DISCARD_UNAUTHENTICATED_BYTES = 8 * 1024 * 1024;

/** The longest a refused body is read and dropped for, however steadily it comes. */
export const DISCARD_MS = 30_000;

/**
 * A request refused before its body was in (credentials, size, budget, Redis away): stop reading
 * it until the answer is out, then read and drop the rest, as nginx does: a client still sending
 * its body reads the answer only once the body is sent, and closing over unread bytes makes the
 * kernel reset the connection, which loses the answer (fetch saw EPIPE for most 413s). Once the
 * body is in the connection goes on serving the client's next requests (a retriable 503 must not
 * cut off the retry sent on the same connection). A body past its cap (declared or read),
 * or one that stops coming (LINGER_MS without a byte, DISCARD_MS in all), is not waited for: the
 * connection is closed, as before, LINGER_MS after the answer at the latest.
 */
function holdUnreadBody(request: FastifyRequest, reply: FastifyReply, bodyRefused: boolean): void {
  const socket = request.raw.socket;
  const declared = Number(request.headers['content-length']);
  const cap = bodyRefused ? DISCARD_BYTES : DISCARD_UNAUTHENTICATED_BYTES;
  const discard = !(Number.isSafeInteger(declared) && declared > cap);
  // fastify closes the connection after a body it refused; reading the rest keeps it whole
  if (discard && bodyRefused) reply.removeHeader('connection');
  request.raw.pause();
  // Take what is buffered so the stream counts as consumed: node then leaves the rest unread
  // (backpressure) instead of draining it once the answer is out.
  request.raw.read();
  reply.raw.once('finish', () => {
    if (request.raw.complete || socket === null || socket.destroyed) return;
    const timer = setTimeout(() => close(), LINGER_MS);
    const overall = setTimeout(() => close(), DISCARD_MS);
    let dropped = 0;
    const stop = (): void => {
      clearTimeout(timer);
      clearTimeout(overall);
      socket.off('close', stop);
      request.raw.off('data', onData);
    };
    const close = (): void => {
      stop();
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      dropped += chunk.length;
      if (dropped > cap) return close();
      timer.refresh();
    };
    timer.unref();
    overall.unref();
    socket.once('close', stop);
    // the body came in after all: the connection is whole again
    request.raw.once('end', stop);
    if (!discard) return;
    request.raw.on('data', onData);
    request.raw.resume();
  });
}

const ROUTE_METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** Sets the error, 404/405 and framework-error handlers. Call before registering routes. */
export function registerErrorHandler(app: FastifyInstance): void {
  const known = FindMyWay();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (!ROUTE_METHODS.includes(method as HTTPMethod)) continue;
      try {
        known.on(method as HTTPMethod, route.url, () => undefined);
      } catch {
        // the same route twice (HEAD added by fastify, or a prefix variant): already known
      }
    }
  });

  app.setErrorHandler((err, request, reply) => sendError(request, reply, err));

  app.setNotFoundHandler((request, reply) => {
    const path = request.raw.url?.split('?')[0] ?? '/';
    const allowed = ROUTE_METHODS.filter((m) => known.find(m, path) !== null);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(
        request,
        reply,
        new WharfError('MethodNotAllowed', `${request.method} is not allowed on ${path}`),
      );
    }
    return sendError(
      request,
      reply,
      new WharfError('NotFound', `no route ${request.method} ${path}`),
    );
  });
}

/** fastify's `frameworkErrors`: a bad URL or an over-long parameter, in the error shape. */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  sendError(request, reply, err);
}

/**
 * fastify's `clientErrorHandler`: errors of the HTTP parser, before any request exists. Headers
 * over the limit get 431, the rest 400, both in the error shape (the MQ HTTP routes' XML for a
 * request line naming them, as their other errors), then the socket closes.
 */
export function clientErrorHandler(
  err: Error & { code?: string; rawPacket?: unknown },
  socket: Socket,
): void {
  // a socket already answered and lingering: the parser refuses each later chunk again
  if (lingering.has(socket)) return;
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const overflow = err.code === 'HPE_HEADER_OVERFLOW';
  const requestId = randomUUID();
  const error = overflow
    ? new WharfError('HeadersTooLarge', 'the request headers are over 16 KiB')
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new WharfError('InvalidArgument', 'the request did not come in whole in time')
      : new WharfError('InvalidArgument', 'malformed HTTP request');
  const refused = refusedRequest(err.rawPacket);
  const answer = isMqHttpTarget(refused.url, refused.mqVersionHeader)
    ? { ...mqErrorAnswer(error, requestId), idHeader: 'x-mq-request-id' }
    : {
        status: overflow ? 431 : 400,
        contentType: 'application/json; charset=utf-8',
        body: JSON.stringify(errorBody(error, requestId)),
        idHeader: 'x-request-id',
      };
  socket.end(
    `HTTP/1.1 ${answer.status} ${overflow ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: ${answer.contentType}\r\n` +
      `content-length: ${Buffer.byteLength(answer.body)}\r\n` +
      `${answer.idHeader}: ${requestId}\r\n` +
      `connection: close\r\n\r\n${answer.body}`,
  );
  // Closed whole soon after, not only our half: a client that neither reads nor closes (a slow
  // loris timed out) would otherwise hold the descriptor for as long as it likes. Not at once:
  // closing with bytes of the client's still unread sends a reset, which can make its kernel drop
  // our answer unread; meanwhile what it sends is read and dropped (a lingering close).
  lingering.add(socket);
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** Sockets answered by clientErrorHandler, read and dropped until destroyed. */
const lingering = new WeakSet<Socket>();

/** What the bytes the HTTP parser refused say of their request: the request line's target and
 *  whether an `x-mq-version` header came (as far as they go; none: `/`). */
export function refusedRequest(rawPacket: unknown): { url: string; mqVersionHeader: boolean } {
  if (!Buffer.isBuffer(rawPacket)) return { url: '/', mqVersionHeader: false };
  const text = rawPacket.subarray(0, 64 * 1024).toString('latin1');
  const requestLine = /^[A-Z]+ (\S+) HTTP\/1\.[01]\r?\n/.exec(text);
  return {
    url: requestLine?.[1] ?? '/',
    mqVersionHeader: /\r?\nx-mq-version:/i.test(text),
  };
}
