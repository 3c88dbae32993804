// Service endpoints: liveness, readiness (Redis and brokers), Prometheus metrics (operator
// token), the JWKS of tenant tokens, and the OpenAPI document.
import type { FastifyInstance } from 'fastify';
import { WharfError, errorMessage } from '../../errors.js';
import type { RouteContext } from '../context.js';
import { adminSecurity, errorResponses } from '../schemas/common.js';

export function serviceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/healthz',
    {
      config: { plane: 'public' },
      schema: {
        tags: ['service'],
        summary: 'The process is alive',
        security: [],
        response: {
          200: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } },
        },
      },
    },
    () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { plane: 'public' },
      schema: {
        tags: ['service'],
        summary: 'Redis and the brokers answer',
        security: [],
        response: {
          200: {
            type: 'object',
            required: ['status'],
            properties: {
              status: { type: 'string' },
              brokers: {
                description:
                  'The brokers this gateway routes to: the one in-process broker of the ' +
                  'all-in-one node, or every registered broker of a cluster',
                type: 'array',
                items: {
                  type: 'object',
                  required: ['id', 'address', 'state'],
                  properties: {
                    id: { type: 'integer' },
                    address: { type: 'string' },
                    state: { type: 'string', enum: ['ready', 'not ready', 'unreachable', 'down'] },
                  },
                },
              },
            },
          },
          ...errorResponses(503),
        },
      },
    },
    async () => {
      // a stopping gateway: load balancers take it out of rotation while it still serves
      if (ctx.draining.aborted) throw new WharfError('Unavailable', 'the gateway is stopping');
      try {
        await ctx.meta.ping();
      } catch (cause) {
        throw new WharfError('Unavailable', `Redis does not answer: ${errorMessage(cause)}`, {
          cause,
        });
      }
      const health = await ctx.brokers.health().catch((cause: unknown) => {
        throw new WharfError('Unavailable', 'the brokers do not answer', { cause });
      });
      if (!health.ready) {
        throw new WharfError('Unavailable', `broker not ready: ${health.detail ?? 'unknown'}`);
      }
      if (ctx.closing.aborted) throw new WharfError('Unavailable', 'shutting down');
      // the all-in-one node's one broker is broker 0, in the same process
      const brokers = health.brokers ?? [{ id: 0, address: 'in-process', state: 'ready' }];
      return { status: 'ready', brokers };
    },
  );

  app.get(
    '/metrics',
    {
      config: { plane: 'admin' },
      schema: {
        tags: ['service'],
        summary: 'Prometheus metrics (operator token)',
        security: adminSecurity,
        response: {
          // the errors are JSON (ErrorBody) like everywhere else: only the metrics are text
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...errorResponses(401, 403),
        },
      },
    },
    async (_request, reply) => {
      // Redis's round trip now (bounded by the readiness deadline; -1 when it does not answer).
      const pingStarted = performance.now();
      const rtt = await ctx.meta.ping().then(
        () => (performance.now() - pingStarted) / 1000,
        () => -1,
      );
      ctx.metrics.redisRoundTripSeconds.set(rtt);
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      config: { plane: 'public' },
      schema: {
        tags: ['service'],
        summary: 'Public keys of tenant bearer tokens (ES256)',
        security: [],
        response: {
          200: {
            type: 'object',
            required: ['keys'],
            properties: {
              keys: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
        },
      },
    },
    async () => ({ keys: await ctx.meta.publicSigningKeys() }),
  );
}
