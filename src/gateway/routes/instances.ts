// Instances: the tenant's namespaces of topics and groups. Creating one needs `manage` on `*`;
// reading one needs any permission on it; listing shows the instances the credential may see.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import { dropFromBrokers, type RouteContext } from '../context.js';
import { canSee, principalOf, resolveInstance } from '../plugins/tenancy.js';
import { TENANT_ERRORS, errorResponses, tenantSecurity } from '../schemas/common.js';
import { bodies } from '../schemas/resources.js';
import { instanceParams, type InstanceParams } from './params.js';

const base = { config: { plane: 'tenant' as const } };
const schemaBase = { tags: ['instances'], security: tenantSecurity };

export function instanceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;

  app.post<{ Body: { name: string } }>(
    '/v1/instances',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Create an instance',
        body: bodies.createInstance,
        response: { 201: { $ref: 'Instance#' }, ...errorResponses(...TENANT_ERRORS, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      if (!principal.permissions.some((p) => p.instance === '*' && p.actions.includes('manage'))) {
        throw new WharfError('AccessDenied', 'creating instances needs manage on *');
      }
      const instance = await meta.createInstance(principal.tenantId, request.body.name);
      return reply.code(201).send(instance);
    },
  );

  app.get(
    '/v1/instances',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'List the instances the credential may see',
        response: {
          200: {
            type: 'object',
            required: ['instances'],
            properties: { instances: { type: 'array', items: { $ref: 'Instance#' } } },
          },
          ...errorResponses(...TENANT_ERRORS),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const all = await meta.instanceList(principal.tenantId);
      return { instances: all.filter((i) => canSee(principal, i.instanceId)) };
    },
  );

  app.get<{ Params: InstanceParams }>(
    '/v1/instances/:instanceId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Get an instance',
        params: instanceParams,
        response: { 200: { $ref: 'Instance#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) =>
      resolveInstance(meta, principalOf(request), request.params.instanceId, 'read'),
  );

  app.delete<{ Params: InstanceParams }>(
    '/v1/instances/:instanceId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Delete an instance with its topics, groups and messages',
        description:
          'Its messages are unreadable at once: the data key their bodies are sealed with is ' +
          'deleted (crypto-shredding); the sealed bytes leave the disk with their segment.',
        params: instanceParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await resolveInstance(meta, principal, request.params.instanceId, 'manage');
      const deleted = await meta.deleteInstance(principal.tenantId, request.params.instanceId);
      if (deleted === null) throw new WharfError('InstanceNotFound', 'no such instance');
      await dropFromBrokers(ctx, deleted.topics, deleted.groups, [
        { tenantId: principal.tenantId, instanceId: request.params.instanceId },
      ]);
      return reply.code(204).send();
    },
  );
}
