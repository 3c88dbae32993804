// Temporary bearer tokens for the tenant plane. Only a SigV4-signed request may ask for one (a
// token minting tokens would outlive itself); the token's permissions are the requested ones
// intersected with the key's, and it dies with the key.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import type { Permission } from '../../meta/index.js';
import type { RouteContext } from '../context.js';
import { principalOf } from '../plugins/tenancy.js';
import { TENANT_ERRORS, epochMs, errorResponses } from '../schemas/common.js';
import { bodies } from '../schemas/resources.js';

export function tokenRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.post<{ Body: { ttlSeconds: number; permissions?: Permission[] } }>(
    '/v1/tokens',
    {
      config: { plane: 'tenant' },
      schema: {
        tags: ['tokens'],
        security: [{ sigv4: [] }],
        summary: 'Issue a temporary bearer token (ES256 JWT), no broader than the signing key',
        body: bodies.createToken,
        response: {
          200: {
            type: 'object',
            required: ['token', 'expiresAt', 'permissions'],
            properties: {
              token: { type: 'string' },
              expiresAt: epochMs,
              permissions: { type: 'array', items: { $ref: 'Permission#' } },
            },
          },
          ...errorResponses(...TENANT_ERRORS),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      if (principal.via !== 'sigv4') {
        throw new WharfError('AccessDenied', 'tokens are issued only to SigV4-signed requests');
      }
      return ctx.tokens.issue(principal, request.body.ttlSeconds, request.body.permissions);
    },
  );
}
