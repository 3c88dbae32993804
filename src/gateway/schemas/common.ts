// JSON schemas shared by routes. They drive validation (Ajv, strict types: no coercion) and the
// OpenAPI document (each `$id` becomes a component). Input rules of API.md: required fields
// have no `?`, unknown fields are ignored, names match NAME_PATTERN and never start `rmq_sys`.
import { PUBLIC_ERROR_CODES } from '../plugins/error-handler.js';

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
export const RESERVED_PREFIX = 'rmq_sys';

export const nameSchema = (description: string) => ({
  type: 'string',
  pattern: NAME_PATTERN,
  not: { pattern: `^${RESERVED_PREFIX}` },
  description: `${description}: ${NAME_PATTERN}, not starting with ${RESERVED_PREFIX}`,
});

/** Whether a name is valid (the same rule as the schemas, for code outside them). */
export function isValidName(name: string): boolean {
  return new RegExp(NAME_PATTERN).test(name) && !name.startsWith(RESERVED_PREFIX);
}

export const epochMs = { type: 'integer', description: 'epoch milliseconds' } as const;

/** An epoch-ms query parameter (read from a query string's digits: validators.ts). */
export const epochMsQuery = (description: string) =>
  ({ type: 'integer', minimum: 0, maximum: 999_999_999_999_999, description }) as const;

export const ErrorBody = {
  $id: 'ErrorBody',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'requestId'],
      properties: {
        // the codes of docs/API.md, open to additions ("others may be added"): a client
        // generated from the document must still read a code added later
        code: {
          description: 'An error code of docs/API.md; others may be added',
          anyOf: [{ type: 'string', enum: PUBLIC_ERROR_CODES }, { type: 'string' }],
        },
        message: { type: 'string' },
        requestId: { type: 'string' },
      },
    },
  },
} as const;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid argument',
  401: 'No credentials',
  403: 'Refused credential, permission or quota',
  404: 'Not found (also another tenant’s resource)',
  405: 'Method not allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Too large',
  415: 'Unsupported media type',
  429: 'Throttled (see retry-after)',
  503: 'Unavailable (safe to retry)',
};

/** Error answers of a route, every one in the ErrorBody shape. */
export function errorResponses(...statuses: number[]): Record<number, object> {
  const out: Record<number, object> = {};
  for (const status of statuses) {
    out[status] = { description: ERROR_DESCRIPTIONS[status], $ref: 'ErrorBody#' };
  }
  return out;
}

/** The answers every tenant-plane route may give besides its own (and besides the ones
 *  `withTransportErrors` adds from how the route is reached). */
export const TENANT_ERRORS = [400, 401, 403, 503];
export const ADMIN_ERRORS = [400, 401, 403, 503];

/** Methods whose body fastify reads (GET and HEAD bodies are never read). */
const BODY_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

interface DocumentedRoute {
  method: string | string[];
  config?: { plane?: string };
  schema: { body?: unknown; response?: unknown };
}

/**
 * The error answers a route gets from the layers in front of it rather than from its handler,
 * made to match them (app.ts applies this to every documented route):
 * - 429 Throttled, every route: the per-address connection bound (plugins/connections.ts);
 * - 503 Unavailable, every route: the gateway shutting down (app.ts), Redis unreachable;
 * - 413 MessageTooLarge, every non-public route of a method with a body: the body is read up to
 *   the limit (plugins/body.ts) whether or not the route takes one;
 * - 415 UnsupportedMediaType only where the route takes a JSON body: no other checks the
 *   Content-Type (decodeJsonBody), so it is dropped elsewhere.
 * A status the route lists itself keeps its own entry.
 */
export function withTransportErrors<S extends DocumentedRoute['schema']>(
  route: DocumentedRoute & { schema: S },
): S {
  const response = { ...(route.schema.response as Record<number | string, unknown> | undefined) };
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const readsBody =
    (route.config?.plane ?? 'public') !== 'public' &&
    methods.some((m) => BODY_METHODS.includes(m.toUpperCase()));
  const added = [429, 503, ...(readsBody ? [413] : [])];
  if (route.schema.body !== undefined) added.push(415);
  else delete response[415];
  for (const [status, answer] of Object.entries(errorResponses(...added))) {
    response[status] ??= answer;
  }
  // status codes are integer keys: they enumerate in order, wherever they were added
  return { ...route.schema, response };
}

type Security = { [scheme: string]: string[] }[];
export const tenantSecurity: Security = [{ sigv4: [] }, { bearer: [] }];
export const adminSecurity: Security = [{ operator: [] }];
