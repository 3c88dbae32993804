// The gateway room's face.

/** Builds the fastify app (not listening) from meta store, broker client, config and logger. */
export { buildApp, MAX_BODY_BYTES, MAX_HEADER_BYTES, type GatewayDeps } from './app.js';
export type { GatewayConfig } from './context.js';
/** Code → HTTP status table and the codes clients can see. */
export { HTTP_ERRORS, PUBLIC_ERROR_CODES } from './plugins/error-handler.js';
/** Pure SigV4 pieces (canonical request, string to sign, signing key). */
export * as sigv4 from './sigv4.js';
export type { TenantPrincipal } from './types.js';
