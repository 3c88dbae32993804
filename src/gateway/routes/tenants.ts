// Operator plane: tenants and their access keys. The secret of an access key is in the create
// answer only; listings never carry it. Revocation invalidates every gateway's cache at once
// (pub/sub) and in any case within the cache's 4 s.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import {
  ACCESS_KEY_ID,
  DEFAULT_PERMISSIONS,
  TENANT_ID,
  type Permission,
  type Quotas,
  type TenantStatus,
} from '../../meta/index.js';
import { dropFromBrokers, type RouteContext } from '../context.js';
import { ADMIN_ERRORS, adminSecurity, errorResponses } from '../schemas/common.js';
import { bodies } from '../schemas/resources.js';

const tenantParams = {
  type: 'object',
  required: ['tenantId'],
  // malformed ids (over-long ones too) are the 404 of an unknown one, decided in code
  properties: { tenantId: { type: 'string' } },
} as const;

const keyParams = {
  type: 'object',
  required: ['tenantId', 'accessKeyId'],
  properties: {
    tenantId: { type: 'string' },
    accessKeyId: { type: 'string' },
  },
} as const;

const base = { config: { plane: 'admin' as const } };
const schemaBase = { tags: ['operator'], security: adminSecurity };

function checkTenantId(tenantId: string): void {
  if (!TENANT_ID.test(tenantId)) throw new WharfError('TenantNotFound', `no tenant ${tenantId}`);
}

export function tenantRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;

  app.post<{ Body: { name: string; quotas?: Partial<Quotas> } }>(
    '/admin/v1/tenants',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Create a tenant',
        body: bodies.createTenant,
        response: { 201: { $ref: 'Tenant#' }, ...errorResponses(...ADMIN_ERRORS, 409) },
      },
    },
    async (request, reply) => {
      const tenant = await meta.tenants.create(request.body.name, request.body.quotas);
      return reply.code(201).send(tenant);
    },
  );

  app.get(
    '/admin/v1/tenants',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'List tenants',
        response: {
          200: {
            type: 'object',
            required: ['tenants'],
            properties: { tenants: { type: 'array', items: { $ref: 'Tenant#' } } },
          },
          ...errorResponses(...ADMIN_ERRORS),
        },
      },
    },
    async () => ({ tenants: await meta.tenants.list() }),
  );

  app.get<{ Params: { tenantId: string } }>(
    '/admin/v1/tenants/:tenantId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Get a tenant',
        params: tenantParams,
        response: { 200: { $ref: 'Tenant#' }, ...errorResponses(...ADMIN_ERRORS, 404) },
      },
    },
    async (request) => {
      checkTenantId(request.params.tenantId);
      const tenant = await meta.tenants.get(request.params.tenantId);
      if (tenant === null) throw new WharfError('TenantNotFound', 'no such tenant');
      return tenant;
    },
  );

  app.patch<{
    Params: { tenantId: string };
    Body: { status?: TenantStatus; quotas?: Partial<Quotas> };
  }>(
    '/admin/v1/tenants/:tenantId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Suspend or reactivate a tenant, change its quotas',
        params: tenantParams,
        body: bodies.patchTenant,
        response: { 200: { $ref: 'Tenant#' }, ...errorResponses(...ADMIN_ERRORS, 404) },
      },
    },
    async (request) => {
      checkTenantId(request.params.tenantId);
      return meta.patchTenant(request.params.tenantId, request.body);
    },
  );

  app.delete<{ Params: { tenantId: string } }>(
    '/admin/v1/tenants/:tenantId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Delete a tenant with its keys, instances, topics, groups and messages',
        description:
          'Its messages are unreadable at once: the data key their bodies are sealed with is ' +
          'deleted (crypto-shredding); the sealed bytes leave the disk with their segment.',
        params: tenantParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...errorResponses(...ADMIN_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      checkTenantId(request.params.tenantId);
      const { tenantId } = request.params;
      const deleted = await meta.deleteTenant(tenantId, async (instance) => {
        await dropFromBrokers(ctx, instance.topics, instance.groups, [
          { tenantId, instanceId: instance.instanceId },
        ]);
      });
      if (deleted === null) throw new WharfError('TenantNotFound', 'no such tenant');
      ctx.metrics.forgetTenant(tenantId);
      // the tenant's last counts on this gateway go to Redis now, not at the next flush: its
      // usage route answers from them alone once its record is gone (404 while there are none;
      // other gateways' counts arrive with their next flush)
      await ctx.usage.flushAll();
      return reply.code(204).send();
    },
  );

  app.post<{
    Params: { tenantId: string };
    Body: { description?: string; permissions?: Permission[] };
  }>(
    '/admin/v1/tenants/:tenantId/access-keys',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Create an access key (the secret is shown only in this answer)',
        params: tenantParams,
        body: bodies.createAccessKey,
        response: { 201: { $ref: 'NewAccessKey#' }, ...errorResponses(...ADMIN_ERRORS, 404) },
      },
    },
    async (request, reply) => {
      checkTenantId(request.params.tenantId);
      const { secret, ...key } = await meta.createAccessKey(
        request.params.tenantId,
        request.body.permissions ?? DEFAULT_PERMISSIONS,
        request.body.description,
      );
      return reply.code(201).send({ ...key, accessKeySecret: secret });
    },
  );

  app.get<{ Params: { tenantId: string } }>(
    '/admin/v1/tenants/:tenantId/access-keys',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'List access keys (never their secrets)',
        params: tenantParams,
        response: {
          200: {
            type: 'object',
            required: ['accessKeys'],
            properties: { accessKeys: { type: 'array', items: { $ref: 'AccessKey#' } } },
          },
          ...errorResponses(...ADMIN_ERRORS, 404),
        },
      },
    },
    async (request) => {
      checkTenantId(request.params.tenantId);
      if ((await meta.tenants.get(request.params.tenantId)) === null) {
        throw new WharfError('TenantNotFound', 'no such tenant');
      }
      return { accessKeys: await meta.listAccessKeys(request.params.tenantId) };
    },
  );

  app.delete<{ Params: { tenantId: string; accessKeyId: string } }>(
    '/admin/v1/tenants/:tenantId/access-keys/:accessKeyId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Revoke an access key (stops working on every gateway within 5 s)',
        params: keyParams,
        response: {
          204: { description: 'Revoked', type: 'null' },
          ...errorResponses(...ADMIN_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const { tenantId, accessKeyId } = request.params;
      checkTenantId(tenantId);
      if (
        !ACCESS_KEY_ID.test(accessKeyId) ||
        !(await meta.revokeAccessKey(tenantId, accessKeyId))
      ) {
        // as on every other route of a tenant, an unknown tenant is said first
        if ((await meta.tenant(tenantId)) === null) {
          throw new WharfError('TenantNotFound', `no tenant ${tenantId}`);
        }
        throw new WharfError('AccessKeyNotFound', 'no such access key');
      }
      return reply.code(204).send();
    },
  );
}
