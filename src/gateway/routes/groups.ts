// Consumer groups. PUT is idempotent: 201 when created, 200 when unchanged or updated; the
// delivery mode is fixed at creation (409 Conflict); `createdAt` is kept across updates since
// the broker starts the group's reading of each topic there. maxGroups is checked atomically.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { DeliveryMode, RetryPolicy } from '../../model/index.js';
import { WharfError } from '../../errors.js';
import type { GroupRecord } from '../../meta/index.js';
import { dropFromBrokers, type RouteContext } from '../context.js';
import { principalOf, resolveGroup, resolveInstance } from '../plugins/tenancy.js';
import { TENANT_ERRORS, errorResponses, tenantSecurity } from '../schemas/common.js';
import { bodies } from '../schemas/resources.js';
import { groupParams, instanceParams, type GroupParams, type InstanceParams } from './params.js';

const base = { config: { plane: 'tenant' as const } };
const schemaBase = { tags: ['groups'], security: tenantSecurity };

export function groupView(g: GroupRecord) {
  return {
    group: g.group,
    instanceId: g.instanceId,
    deliveryMode: g.deliveryMode,
    maxDeliveryAttempts: g.maxDeliveryAttempts,
    invisibleSeconds: g.invisibleSeconds,
    ...(g.retryPolicy === undefined ? {} : { retryPolicy: g.retryPolicy }),
    createdAt: g.createdAt,
  };
}

interface PutGroupBody {
  deliveryMode: DeliveryMode;
  maxDeliveryAttempts: number;
  invisibleSeconds: number;
  retryPolicy?: RetryPolicy;
}

export function groupRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;

  app.put<{ Params: GroupParams; Body: PutGroupBody }>(
    '/v1/instances/:instanceId/groups/:group',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Create or update a consumer group (idempotent)',
        params: groupParams,
        body: bodies.putGroup,
        response: {
          200: { $ref: 'Group#', description: 'Unchanged or updated' },
          201: { $ref: 'Group#', description: 'Created' },
          ...errorResponses(...TENANT_ERRORS, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { instanceId, group } = request.params;
      await resolveInstance(meta, principal, instanceId, 'manage');
      const body = request.body;
      const policy = body.retryPolicy;
      if (
        policy !== undefined &&
        'exponential' in policy &&
        policy.exponential.maxSeconds < policy.exponential.initialSeconds
      ) {
        throw new WharfError('InvalidArgument', 'exponential.maxSeconds must be ≥ initialSeconds');
      }
      const { status, record } = await meta.putGroup({
        tenantId: principal.tenantId,
        instanceId,
        group,
        deliveryMode: body.deliveryMode,
        maxDeliveryAttempts: body.maxDeliveryAttempts,
        invisibleSeconds: body.invisibleSeconds,
        ...(policy === undefined ? {} : { retryPolicy: policy }),
        createdAt: Date.now(),
        // kept across updates by put-resource-4.lua; a re-created group gets a new one
        incarnation: randomBytes(8).toString('hex'),
      });
      return reply.code(status === 'created' ? 201 : 200).send(groupView(record));
    },
  );

  app.get<{ Params: InstanceParams }>(
    '/v1/instances/:instanceId/groups',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'List consumer groups',
        params: instanceParams,
        response: {
          200: {
            type: 'object',
            required: ['groups'],
            properties: { groups: { type: 'array', items: { $ref: 'Group#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await resolveInstance(meta, principal, request.params.instanceId, 'read');
      const groups = await meta.groupList(principal.tenantId, request.params.instanceId);
      return { groups: groups.map(groupView) };
    },
  );

  app.get<{ Params: GroupParams }>(
    '/v1/instances/:instanceId/groups/:group',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Get a consumer group',
        params: groupParams,
        response: { 200: { $ref: 'Group#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const { instanceId, group } = request.params;
      return groupView(await resolveGroup(meta, principalOf(request), instanceId, group, 'read'));
    },
  );

  app.delete<{ Params: GroupParams }>(
    '/v1/instances/:instanceId/groups/:group',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Delete a consumer group and its progress',
        params: groupParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { instanceId, group } = request.params;
      await resolveInstance(meta, principal, instanceId, 'manage');
      const deleted = await meta.deleteGroup(principal.tenantId, instanceId, group);
      if (deleted === null) throw new WharfError('GroupNotFound', `no group ${group}`);
      await dropFromBrokers(ctx, [], [deleted]);
      return reply.code(204).send();
    },
  );
}
