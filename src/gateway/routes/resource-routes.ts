// The one skeleton of an instance's named resources (topics, groups, alarms): PUT (idempotent;
// 201 when created, else 200), list, GET and DELETE (204) under
// /v1/instances/:instanceId/<plural>[/:<name>], tenant plane, each with its OpenAPI schema. A
// resource gives its schemas, summaries and four operations; permissions, not-found errors and
// what a delete tells the brokers stay in the operations, so each route file keeps its rules.
import type { FastifyInstance } from 'fastify';
import type { TenantPrincipal } from '../types.js';
import { principalOf } from '../plugins/tenancy.js';
import { TENANT_ERRORS, errorResponses, tenantSecurity } from '../schemas/common.js';
import { instanceParams, type InstanceParams } from './params.js';

const base = { config: { plane: 'tenant' as const } };

export interface InstanceResource<Name extends string, Body> {
  /** The path segment, the OpenAPI tag and the list answer's property (`topics`). */
  plural: string;
  /** The path parameter naming one resource (`topic`). */
  nameParam: Name;
  /** JSON schemas: the path parameters of one resource, and the PUT body. */
  params: object;
  putBody: object;
  /** The answer's component (`Topic#`). */
  ref: string;
  summaries: { put: string; list: string; get: string; delete: string };
  /** The PUT answers' descriptions, and its error statuses beyond the tenant plane's. */
  putAnswers: { 200: string; 201: string };
  putErrors: number[];
  put(
    principal: TenantPrincipal,
    instanceId: string,
    name: string,
    body: Body,
  ): Promise<{ created: boolean; answer: unknown }>;
  list(principal: TenantPrincipal, instanceId: string): Promise<unknown[]>;
  /** The answer of GET; throws the resource's NotFound. */
  get(principal: TenantPrincipal, instanceId: string, name: string): Promise<unknown>;
  /** Throws the resource's NotFound. */
  delete(principal: TenantPrincipal, instanceId: string, name: string): Promise<void>;
}

/** Registers the four routes of `resource`. */
export function instanceResourceRoutes<Name extends string, Body>(
  app: FastifyInstance,
  resource: InstanceResource<Name, Body>,
): void {
  // Validated by `resource.params` / `resource.putBody` before a handler runs.
  type Params = InstanceParams & Record<string, string>;
  const listPath = `/v1/instances/:instanceId/${resource.plural}`;
  const onePath = `${listPath}/:${resource.nameParam}`;
  const schemaBase = { tags: [resource.plural], security: tenantSecurity };
  const nameOf = (params: Params): string => params[resource.nameParam];

  app.put<{ Params: Params; Body: unknown }>(
    onePath,
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: resource.summaries.put,
        params: resource.params,
        body: resource.putBody,
        response: {
          200: { $ref: resource.ref, description: resource.putAnswers[200] },
          201: { $ref: resource.ref, description: resource.putAnswers[201] },
          ...errorResponses(...TENANT_ERRORS, ...resource.putErrors),
        },
      },
    },
    async (request, reply) => {
      const { instanceId } = request.params;
      const { created, answer } = await resource.put(
        principalOf(request),
        instanceId,
        nameOf(request.params),
        request.body as Body,
      );
      return reply.code(created ? 201 : 200).send(answer);
    },
  );

  app.get<{ Params: InstanceParams }>(
    listPath,
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: resource.summaries.list,
        params: instanceParams,
        response: {
          200: {
            type: 'object',
            required: [resource.plural],
            properties: { [resource.plural]: { type: 'array', items: { $ref: resource.ref } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => ({
      [resource.plural]: await resource.list(principalOf(request), request.params.instanceId),
    }),
  );

  app.get<{ Params: Params }>(
    onePath,
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: resource.summaries.get,
        params: resource.params,
        response: { 200: { $ref: resource.ref }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) =>
      resource.get(principalOf(request), request.params.instanceId, nameOf(request.params)),
  );

  app.delete<{ Params: Params }>(
    onePath,
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: resource.summaries.delete,
        params: resource.params,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      await resource.delete(
        principalOf(request),
        request.params.instanceId,
        nameOf(request.params),
      );
      return reply.code(204).send();
    },
  );
}
