// Alarms: PUT creates (201, with the webhook signing secret, shown only then) or replaces (200)
// an alarm on a topic's or a group's metric. The topic, and the group when the metric is about
// one, must exist. Evaluation and signed webhook delivery run as jobs (TODO(#5)).
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import type { AlarmSpec } from '../../meta/index.js';
import type { RouteContext } from '../context.js';
import { principalOf, resolveGroup, resolveInstance, resolveTopic } from '../plugins/tenancy.js';
import {
  TENANT_ERRORS,
  epochMs,
  errorResponses,
  nameSchema,
  tenantSecurity,
} from '../schemas/common.js';
import { instanceParam, instanceParams, type InstanceParams } from './params.js';

const base = { config: { plane: 'tenant' as const } };
const schemaBase = { tags: ['alarms'], security: tenantSecurity };
const GROUP_METRICS = ['backlog', 'oldestUnackedAgeMs', 'deadLetters'];

const alarmParams = {
  type: 'object',
  required: ['instanceId', 'alarmId'],
  properties: { instanceId: instanceParam, alarmId: nameSchema('alarm id') },
} as const;
interface AlarmParams extends InstanceParams {
  alarmId: string;
}

export const AlarmSchema = {
  $id: 'Alarm',
  type: 'object',
  required: [
    'alarmId',
    'instanceId',
    'metric',
    'topic',
    'threshold',
    'forSeconds',
    'webhookUrl',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    alarmId: { type: 'string' },
    instanceId: { type: 'string' },
    metric: {
      type: 'string',
      enum: ['backlog', 'oldestUnackedAgeMs', 'deadLetters', 'publishRate'],
    },
    topic: { type: 'string' },
    group: { type: 'string' },
    threshold: { type: 'number' },
    forSeconds: { type: 'integer' },
    webhookUrl: { type: 'string' },
    webhookSecret: {
      type: 'string',
      description: 'HMAC-SHA256 key of the notifications; in the creating answer only',
    },
    createdAt: epochMs,
    updatedAt: epochMs,
  },
} as const;

const putBody = {
  type: 'object',
  required: ['metric', 'topic', 'threshold', 'forSeconds', 'webhookUrl'],
  properties: {
    metric: {
      type: 'string',
      enum: ['backlog', 'oldestUnackedAgeMs', 'deadLetters', 'publishRate'],
      description: 'backlog, oldestUnackedAgeMs and deadLetters are about a group',
    },
    topic: nameSchema('topic name'),
    group: nameSchema('group name'),
    threshold: { type: 'number', minimum: 0 },
    forSeconds: { type: 'integer', minimum: 0, maximum: 86400 },
    webhookUrl: { type: 'string', pattern: '^https?://[^\\s]+$', maxLength: 2048 },
  },
} as const;

export function alarmRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;

  app.put<{ Params: AlarmParams; Body: AlarmSpec }>(
    '/v1/instances/:instanceId/alarms/:alarmId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Create or replace an alarm',
        params: alarmParams,
        body: putBody,
        response: {
          200: { $ref: 'Alarm#', description: 'Replaced' },
          201: { $ref: 'Alarm#', description: 'Created (with webhookSecret)' },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { instanceId, alarmId } = request.params;
      const spec = request.body;
      if (GROUP_METRICS.includes(spec.metric) && spec.group === undefined) {
        throw new WharfError('InvalidArgument', `the ${spec.metric} metric needs a group`);
      }
      await resolveTopic(meta, principal, instanceId, spec.topic, 'manage');
      if (spec.group !== undefined) {
        await resolveGroup(meta, principal, instanceId, spec.group, 'manage');
      }
      const { created, alarm, webhookSecret } = await meta.alarms.put(
        principal.tenantId,
        instanceId,
        alarmId,
        spec,
      );
      return reply
        .code(created ? 201 : 200)
        .send(webhookSecret === undefined ? alarm : { ...alarm, webhookSecret });
    },
  );

  app.get<{ Params: AlarmParams }>(
    '/v1/instances/:instanceId/alarms/:alarmId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Get an alarm',
        params: alarmParams,
        response: { 200: { $ref: 'Alarm#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId, alarmId } = request.params;
      await resolveInstance(meta, principal, instanceId, 'read');
      const alarm = await meta.alarms.get(principal.tenantId, instanceId, alarmId);
      if (alarm === null) throw new WharfError('AlarmNotFound', `no alarm ${alarmId}`);
      return alarm;
    },
  );

  app.get<{ Params: InstanceParams }>(
    '/v1/instances/:instanceId/alarms',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'List alarms',
        params: instanceParams,
        response: {
          200: {
            type: 'object',
            required: ['alarms'],
            properties: { alarms: { type: 'array', items: { $ref: 'Alarm#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await resolveInstance(meta, principal, request.params.instanceId, 'read');
      return { alarms: await meta.alarms.list(principal.tenantId, request.params.instanceId) };
    },
  );

  app.delete<{ Params: AlarmParams }>(
    '/v1/instances/:instanceId/alarms/:alarmId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Delete an alarm',
        params: alarmParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { instanceId, alarmId } = request.params;
      await resolveInstance(meta, principal, instanceId, 'manage');
      if (!(await meta.alarms.delete(principal.tenantId, instanceId, alarmId))) {
        throw new WharfError('AlarmNotFound', `no alarm ${alarmId}`);
      }
      return reply.code(204).send();
    },
  );
}
