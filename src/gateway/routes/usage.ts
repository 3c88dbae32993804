// Usage in hourly buckets (requests, messages and bytes published / delivered / acked, API calls
// by class, storage bytes): the operator's view of a tenant's instances, and a tenant's view of
// one of its own. Counted by the gateways (usage-meter.ts) and flushed to Redis every 10 s. The
// operator's view lists deleted instances too, and answers for a deleted tenant (bills come after).
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import { MAX_USAGE_HOURS, TENANT_ID, USAGE_COUNTERS } from '../../meta/index.js';
import type { RouteContext } from '../context.js';
import { principalOf, resolveInstance } from '../plugins/tenancy.js';
import {
  ADMIN_ERRORS,
  TENANT_ERRORS,
  adminSecurity,
  epochMs,
  epochMsQuery,
  errorResponses,
  tenantSecurity,
} from '../schemas/common.js';
import { instanceParams, type InstanceParams } from './params.js';

const HOUR_MS = 3_600_000;

export const UsageSchema = {
  $id: 'Usage',
  type: 'object',
  required: ['tenantId', 'from', 'to', 'buckets'],
  properties: {
    tenantId: { type: 'string' },
    from: epochMs,
    to: epochMs,
    buckets: {
      type: 'array',
      description: 'hours with any usage, oldest first, per instance',
      items: {
        type: 'object',
        required: ['instanceId', 'hour', ...USAGE_COUNTERS],
        properties: {
          instanceId: { type: 'string' },
          hour: { ...epochMs, description: 'start of the hour, epoch ms' },
          ...Object.fromEntries(
            USAGE_COUNTERS.map((c) => [
              c,
              {
                type: 'integer',
                description:
                  c === 'storageBytes'
                    ? 'gauge: bytes published to the instance’s topics (retention not subtracted), last sample of the hour'
                    : 'count in the hour',
              },
            ]),
          ),
        },
      },
    },
  },
} as const;

const rangeQuery = {
  type: 'object',
  properties: {
    from: epochMsQuery('epoch ms, default 24 h before `to`'),
    to: epochMsQuery('epoch ms, default now'),
  },
} as const;

interface RangeQuery {
  from?: number;
  to?: number;
}

function range(query: RangeQuery): { fromMs: number; toMs: number } {
  const toMs = query.to ?? Date.now();
  const fromMs = query.from ?? toMs - 24 * HOUR_MS;
  if (fromMs > toMs) throw new WharfError('InvalidArgument', 'from must not be after to');
  // the span itself (a month from its first hour to the next month's: 744 h), not the hour
  // buckets it touches (745 of them, `to` being inclusive)
  if (toMs - fromMs > MAX_USAGE_HOURS * HOUR_MS) {
    const hours = Math.ceil((toMs - fromMs) / HOUR_MS);
    throw new WharfError(
      'InvalidArgument',
      `the range spans ${hours} hours, over ${MAX_USAGE_HOURS}`,
    );
  }
  return { fromMs, toMs };
}

export function usageRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;
  const answer = async (tenantId: string, instanceIds: string[], query: RangeQuery) => {
    const { fromMs, toMs } = range(query);
    const buckets = await meta.usage.query(tenantId, instanceIds, fromMs, toMs);
    return {
      tenantId,
      from: fromMs,
      to: toMs,
      buckets: buckets.map((b) => ({ instanceId: b.instanceId, hour: b.hour, ...b.counters })),
    };
  };

  app.get<{ Params: { tenantId: string }; Querystring: RangeQuery }>(
    '/admin/v1/tenants/:tenantId/usage',
    {
      config: { plane: 'admin' },
      schema: {
        tags: ['operator'],
        security: adminSecurity,
        summary: 'A tenant’s usage per instance and hour (billing)',
        description:
          'Every instance with usage in the range, deleted ones included; a deleted tenant’s usage ' +
          'stays readable until its buckets expire (400 days after their last write). ' +
          '404 TenantNotFound: no such tenant and no usage of one.',
        params: {
          type: 'object',
          required: ['tenantId'],
          properties: { tenantId: { type: 'string' } },
        },
        querystring: rangeQuery,
        response: { 200: { $ref: 'Usage#' }, ...errorResponses(...ADMIN_ERRORS, 404) },
      },
    },
    async (request) => {
      const { tenantId } = request.params;
      if (!TENANT_ID.test(tenantId))
        throw new WharfError('TenantNotFound', `no tenant ${tenantId}`);
      // Usage outlives instances and the tenant (bills come after): the instances read are the
      // live ones and every one the usage index has, deleted or not.
      const [tenant, recorded] = await Promise.all([
        meta.tenants.get(tenantId),
        meta.usage.instances(tenantId),
      ]);
      if (tenant === null && recorded.size === 0) {
        throw new WharfError('TenantNotFound', `no tenant ${tenantId}`);
      }
      const live = tenant === null ? [] : await meta.instances.list(tenantId);
      const { fromMs } = range(request.query);
      const instanceIds = new Set(live.map((i) => i.instanceId));
      for (const [instanceId, lastHourMs] of [...recorded].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (lastHourMs + HOUR_MS > fromMs) instanceIds.add(instanceId);
      }
      return answer(tenantId, [...instanceIds], request.query);
    },
  );

  app.get<{ Params: InstanceParams; Querystring: RangeQuery }>(
    '/v1/instances/:instanceId/usage',
    {
      config: { plane: 'tenant' },
      schema: {
        tags: ['usage'],
        security: tenantSecurity,
        summary: 'The instance’s usage per hour',
        params: instanceParams,
        querystring: rangeQuery,
        response: { 200: { $ref: 'Usage#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId } = request.params;
      await resolveInstance(meta, principal, instanceId, 'read');
      return answer(principal.tenantId, [instanceId], request.query);
    },
  );
}
