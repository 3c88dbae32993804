// Alarms: PUT creates (201, with the webhook signing secret, shown only then) or replaces (200)
// an alarm on a topic's or a group's metric. The topic, and the group when the metric is about
// one, must exist. Evaluation and signed webhook delivery run as jobs (TODO(#5)).
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import { ALARM_METRICS, type AlarmSpec } from '../../meta/index.js';
import type { RouteContext } from '../context.js';
import { resolveGroup, resolveInstance, resolveTopic } from '../plugins/tenancy.js';
import { epochMs, nameSchema } from '../schemas/common.js';
import { instanceParam } from './params.js';
import { instanceResourceRoutes } from './resource-routes.js';

const GROUP_METRICS = ['backlog', 'oldestUnackedAgeMs', 'deadLetters'];

const alarmParams = {
  type: 'object',
  required: ['instanceId', 'alarmId'],
  properties: { instanceId: instanceParam, alarmId: nameSchema('alarm id') },
} as const;

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
      enum: ALARM_METRICS,
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
      enum: ALARM_METRICS,
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
  instanceResourceRoutes<'alarmId', AlarmSpec>(app, {
    plural: 'alarms',
    nameParam: 'alarmId',
    params: alarmParams,
    putBody,
    ref: 'Alarm#',
    summaries: {
      put: 'Create or replace an alarm',
      list: 'List alarms',
      get: 'Get an alarm',
      delete: 'Delete an alarm',
    },
    putAnswers: { 200: 'Replaced', 201: 'Created (with webhookSecret)' },
    putErrors: [404],

    async put(principal, instanceId, alarmId, spec) {
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
      return {
        created,
        answer: webhookSecret === undefined ? alarm : { ...alarm, webhookSecret },
      };
    },

    async list(principal, instanceId) {
      await resolveInstance(meta, principal, instanceId, 'read');
      return meta.alarms.list(principal.tenantId, instanceId);
    },

    async get(principal, instanceId, alarmId) {
      await resolveInstance(meta, principal, instanceId, 'read');
      const alarm = await meta.alarms.get(principal.tenantId, instanceId, alarmId);
      if (alarm === null) throw new WharfError('AlarmNotFound', `no alarm ${alarmId}`);
      return alarm;
    },

    async delete(principal, instanceId, alarmId) {
      await resolveInstance(meta, principal, instanceId, 'manage');
      if (!(await meta.alarms.delete(principal.tenantId, instanceId, alarmId))) {
        throw new WharfError('AlarmNotFound', `no alarm ${alarmId}`);
      }
    },
  });
}
