// How a refusal looks on the MQ HTTP routes: the protocol's code and status for every Wharf
// code (a second table beside error-handler's HTTP_ERRORS; typed as a full record, so a new
// Wharf code must be mapped here too), refinements a route attaches as `details.mqCode`
// (MalformedXML, InvalidDigest, TimeExpired, ...), and the XML `Error` answer with
// `x-mq-request-id`. Every answer on these routes, framework errors included, is XML: a JSON
// error makes the Node SDK resolve a failed publish and crash on a failed consume.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WharfError, type ErrorCode } from '../../errors.js';
import { encodeError } from './xml-codec.js';

/** The protocol's codes with their statuses (MQHTTP.md §6, plus Wharf's own where it has none). */
export const MQ_ERROR_STATUS = {
  MessageNotExist: 404,
  TopicNotExist: 404,
  GroupNotExist: 404,
  ReceiptHandleError: 400,
  MissingAuthorizationHeader: 400,
  InvalidAuthorizationHeader: 400,
  MissingDateHeader: 400,
  InvalidDateHeader: 400,
  SignatureDoesNotMatch: 403,
  InvalidAccessKeyId: 403,
  AccessDenied: 403,
  QuotaExceeded: 403,
  TimeExpired: 408,
  InvalidDigest: 400,
  MalformedXML: 400,
  InvalidArgument: 400,
  NotFound: 404,
  MethodNotAllowed: 405,
  MessageTooLarge: 413,
  UriTooLong: 414,
  UnsupportedMediaType: 415,
  HeadersTooLarge: 431,
  QpsLimitExceeded: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
} as const;

export type MqErrorCode = keyof typeof MQ_ERROR_STATUS;

/** Each Wharf code's protocol code. */
export const MQ_ERROR_CODES: Record<ErrorCode, MqErrorCode> = {
  InvalidArgument: 'InvalidArgument',
  InvalidReceiptHandle: 'ReceiptHandleError',
  MissingAuthentication: 'MissingAuthorizationHeader',
  IncompleteSignature: 'InvalidAuthorizationHeader',
  SignatureDoesNotMatch: 'SignatureDoesNotMatch',
  RequestExpired: 'TimeExpired',
  InvalidAccessKeyId: 'InvalidAccessKeyId',
  InvalidToken: 'InvalidAuthorizationHeader',
  AccessDenied: 'AccessDenied',
  QuotaExceeded: 'QuotaExceeded',
  InstanceNotFound: 'TopicNotExist',
  TopicNotFound: 'TopicNotExist',
  GroupNotFound: 'GroupNotExist',
  MessageNotFound: 'MessageNotExist',
  TenantNotFound: 'AccessDenied',
  TransactionNotFound: 'ReceiptHandleError',
  AlarmNotFound: 'NotFound',
  AccessKeyNotFound: 'NotFound',
  NotFound: 'NotFound',
  MethodNotAllowed: 'MethodNotAllowed',
  AlreadyExists: 'InvalidArgument',
  MessageTypeMismatch: 'InvalidArgument',
  Conflict: 'MessageNotExist',
  ReceiptHandleExpired: 'MessageNotExist',
  MessageTooLarge: 'MessageTooLarge',
  UriTooLong: 'UriTooLong',
  UnsupportedMediaType: 'UnsupportedMediaType',
  Throttled: 'QpsLimitExceeded',
  HeadersTooLarge: 'HeadersTooLarge',
  Internal: 'InternalError',
  Unavailable: 'ServiceUnavailable',
  DiskFull: 'ServiceUnavailable',
  AppendQueueFull: 'ServiceUnavailable',
  StoreClosed: 'ServiceUnavailable',
  RecordTooLarge: 'MessageTooLarge',
  OffsetExpired: 'MessageNotExist',
  CorruptRecord: 'InternalError',
  UnsupportedFormat: 'InternalError',
  CorruptIndex: 'InternalError',
  IoError: 'ServiceUnavailable',
  DirLocked: 'ServiceUnavailable',
};

/** A Wharf refusal that the MQ HTTP routes answer with a more precise protocol code. */
export function mqRefusal(code: ErrorCode, mqCode: MqErrorCode, message: string): WharfError {
  return new WharfError(code, message, { details: { mqCode } });
}

function isMqErrorCode(value: unknown): value is MqErrorCode {
  return typeof value === 'string' && Object.hasOwn(MQ_ERROR_STATUS, value);
}

/** The protocol's code and status of a refusal. */
export function mqErrorOf(error: WharfError): { code: MqErrorCode; status: number } {
  const refined = error.details?.mqCode;
  const code = isMqErrorCode(refined) ? refined : MQ_ERROR_CODES[error.code];
  return { code, status: MQ_ERROR_STATUS[code] };
}

export const MQ_CONTENT_TYPE = 'text/xml;charset=utf-8';
/** The `HostId` of error answers. */
export const MQ_HOST_ID = 'wharf';

/**
 * Whether a request is answered in the MQ HTTP shape: an MQ HTTP route, or (unrouted: 404, 405,
 * framework errors) a path that begins with `/topics/` (also after extra leading slashes), or an
 * SDK's request (its `x-mq-version`) to an endpoint with a path prefix (`/prefix/topics/…`).
 */
export function isMqHttpRequest(request: FastifyRequest): boolean {
  if (request.routeOptions.config?.plane === 'mqhttp') return true;
  return isMqHttpTarget(request.raw.url ?? '/', request.headers['x-mq-version'] !== undefined);
}

/** Whether a request for `url` (with or without an `x-mq-version` header) is answered in the MQ
 *  HTTP shape when no route claims it (isMqHttpRequest; the HTTP parser's own refusals). */
export function isMqHttpTarget(url: string, mqVersionHeader: boolean): boolean {
  if (/^\/+topics(\/|$|\?)/.test(url)) return true;
  return mqVersionHeader && /\/topics(\/|$|\?)/.test(url);
}

/** The XML `Error` answer (and its status) of a refusal made before any request exists. */
export function mqErrorAnswer(
  error: WharfError,
  requestId: string,
): { status: number; contentType: string; body: string } {
  const { code, status } = mqErrorOf(error);
  return {
    status,
    contentType: MQ_CONTENT_TYPE,
    body: encodeError({ code, message: error.message, requestId, hostId: MQ_HOST_ID }),
  };
}

/** Sends the XML `Error` answer of an already-mapped refusal. */
export function sendMqError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: WharfError,
): FastifyReply {
  const answer = mqErrorAnswer(error, request.id);
  return reply
    .code(answer.status)
    .header('x-mq-request-id', request.id)
    .type(answer.contentType)
    .send(answer.body);
}
