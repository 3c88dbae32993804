// WharfError and the one table of error codes. No HTTP here: the gateway's error handler maps
// codes to statuses. API.md codes are kept verbatim; internal codes (store, cluster) follow.
// `retriable` says whether the same request may succeed when sent again unchanged.

export const ERROR_CODES = {
  // API.md, fixed
  InvalidArgument: { retriable: false, description: 'malformed input or a parameter out of range' },
  InvalidReceiptHandle: {
    retriable: false,
    description: 'receipt handle malformed, forged or not this tenant’s',
  },
  MissingAuthentication: { retriable: false, description: 'no credentials' },
  IncompleteSignature: { retriable: false, description: 'malformed Authorization or x-amz-date' },
  SignatureDoesNotMatch: {
    retriable: false,
    description: 'signature, scope or payload hash wrong',
  },
  RequestExpired: {
    retriable: false,
    description: 'request date more than 15 minutes from server time',
  },
  InvalidAccessKeyId: { retriable: false, description: 'unknown or revoked access key' },
  InvalidToken: {
    retriable: false,
    description: 'bearer token wrong, expired, forged or for the other plane',
  },
  AccessDenied: {
    retriable: false,
    description: 'credential lacks the permission or tenant suspended',
  },
  InstanceNotFound: { retriable: false, description: 'no such instance' },
  TopicNotFound: { retriable: false, description: 'no such topic' },
  GroupNotFound: { retriable: false, description: 'no such group' },
  MessageNotFound: { retriable: false, description: 'no such message' },
  TenantNotFound: { retriable: false, description: 'no such tenant' },
  TransactionNotFound: { retriable: false, description: 'no such transaction' },
  AlarmNotFound: { retriable: false, description: 'no such alarm' },
  AccessKeyNotFound: { retriable: false, description: 'no such access key' },
  NotFound: { retriable: false, description: 'no such route' },
  MethodNotAllowed: { retriable: false, description: 'known path, other method' },
  AlreadyExists: { retriable: false, description: 'resource already exists' },
  MessageTypeMismatch: { retriable: false, description: 'topic exists with another message type' },
  Conflict: {
    retriable: false,
    description: 'the resource is in a state that forbids the operation',
  },
  QuotaExceeded: {
    retriable: false,
    description: 'a count quota (topics, groups, alarms) is reached',
  },
  ReceiptHandleExpired: { retriable: false, description: 'the delivery of this handle is over' },
  MessageTooLarge: {
    retriable: false,
    description: 'message, batch or request body over the limit',
  },
  UnsupportedMediaType: {
    retriable: false,
    description: 'non-JSON Content-Type or a Content-Encoding',
  },
  Throttled: {
    retriable: true,
    description:
      'tenant quota, connections per address or the tenant’s share of request bodies exceeded; see retry-after',
  },
  Unavailable: {
    retriable: true,
    description: 'broker or Redis not reachable, overloaded or shutting down',
  },
  Internal: { retriable: true, description: 'unexpected failure' },
  UriTooLong: { retriable: false, description: 'the request target is over 8 KiB' },
  HeadersTooLarge: { retriable: false, description: 'the request headers are over 16 KiB' },
  // store and cluster, internal
  DiskFull: {
    retriable: true,
    description: 'free disk space below the watermark; appends refused',
  },
  AppendQueueFull: { retriable: true, description: 'too many appends pending; retry shortly' },
  RecordTooLarge: { retriable: false, description: 'a record over the store limit' },
  CorruptRecord: {
    retriable: false,
    description: 'a commit-log record failed its length or CRC check',
  },
  UnsupportedFormat: {
    retriable: false,
    description: 'a file written in an unknown format version',
  },
  CorruptIndex: { retriable: false, description: 'a derived index file is damaged' },
  OffsetExpired: { retriable: false, description: 'the position was deleted by retention' },
  StoreClosed: { retriable: true, description: 'the store is closed or failed' },
  IoError: { retriable: true, description: 'a file operation failed' },
  DirLocked: {
    retriable: false,
    description: 'the directory is locked by another live process (one broker per data dir)',
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface WharfErrorOptions {
  cause?: unknown;
  retryAfterMs?: number;
  details?: Record<string, unknown>;
}

export class WharfError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WharfErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WharfError';
    this.code = code;
    this.retriable = ERROR_CODES[code].retriable;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }
}

export function isWharfError(value: unknown, code?: ErrorCode): value is WharfError {
  return value instanceof WharfError && (code === undefined || value.code === code);
}

/** The message of anything thrown: an Error's, else its text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
