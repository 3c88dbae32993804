// Alarms: PUT creates (201, with the webhook signing secret, shown only then) or replaces (200)
// an alarm on a topic's or a group's metric, at most MAX_ALARMS_PER_INSTANCE an instance. The
// topic, and the group when the metric is about one, must exist; the webhook URL must not reach loopback, private, link-local or metadata
// addresses (unless the operator allows them). Evaluation and signed webhook delivery run in
// src/alarms; each alarm's history (fired, resolved, delivery attempts) is readable here.
import type { FastifyInstance } from 'fastify';
import { webhookUrlProblem } from '../../alarms/index.js';
import { WharfError } from '../../errors.js';
import {
  ALARM_EVENT_TYPES,
  ALARM_METRICS,
  HISTORY_MAX,
  MAX_ALARMS_PER_INSTANCE,
  type AlarmSpec,
} from '../../meta/index.js';
import type { RouteContext } from '../context.js';
import { principalOf, resolveGroup, resolveInstance, resolveTopic } from '../plugins/tenancy.js';
import {
  TENANT_ERRORS,
  epochMs,
  errorResponses,
  nameSchema,
  tenantSecurity,
} from '../schemas/common.js';
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

export const AlarmEventSchema = {
  $id: 'AlarmEvent',
  type: 'object',
  required: ['type', 'time', 'notification'],
  properties: {
    type: {
      type: 'string',
      enum: ALARM_EVENT_TYPES,
      description: 'fired, resolved, or one delivery attempt of a notification',
    },
    time: epochMs,
    notification: {
      type: 'integer',
      description: 'the notification number (a transition and its deliveries share it)',
    },
    value: { type: 'number' },
    threshold: { type: 'number' },
    attempt: { type: 'integer', description: 'deliveries: 1 for the first try' },
    ok: { type: 'boolean', description: 'deliveries: the receiver answered 2xx' },
    status: { type: 'integer', description: 'deliveries: the HTTP status answered' },
    error: { type: 'string', description: 'deliveries: why the attempt failed' },
  },
} as const;

const putBody = {
  type: 'object',
  required: ['metric', 'topic', 'threshold', 'forSeconds', 'webhookUrl'],
  properties: {
    metric: {
      type: 'string',
      enum: ALARM_METRICS,
      description:
        'backlog, oldestUnackedAgeMs and deadLetters are about a group (`group` required); ' +
        "publishRate is a topic's (`group` refused: 400 InvalidArgument)",
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
      put: `Create or replace an alarm (at most ${MAX_ALARMS_PER_INSTANCE} an instance: 403 QuotaExceeded past it)`,
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
      if (!GROUP_METRICS.includes(spec.metric) && spec.group !== undefined) {
        // the evaluator reads a topic's publish rate: the group would be kept and ignored
        throw new WharfError('InvalidArgument', `the ${spec.metric} metric is a topic's: no group`);
      }
      const problem = webhookUrlProblem(spec.webhookUrl, ctx.config.allowPrivateWebhooks === true);
      if (problem !== null) {
        throw new WharfError('InvalidArgument', `webhookUrl ${problem}`);
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

    // an alarm holds its webhook URL, which often carries a secret (Slack's, Teams'): read with
    // `manage`, the permission that writes it, not with any permission at all
    async list(principal, instanceId) {
      await resolveInstance(meta, principal, instanceId, 'manage');
      return meta.alarms.list(principal.tenantId, instanceId);
    },

    async get(principal, instanceId, alarmId) {
      await resolveInstance(meta, principal, instanceId, 'manage');
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

  app.get<{ Params: { instanceId: string; alarmId: string }; Querystring: { limit?: number } }>(
    '/v1/instances/:instanceId/alarms/:alarmId/history',
    {
      config: { plane: 'tenant' },
      schema: {
        tags: ['alarms'],
        security: tenantSecurity,
        summary: 'An alarm’s history: fired, resolved and delivery attempts, newest first',
        params: alarmParams,
        querystring: {
          type: 'object',
          properties: {
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 999,
              description: `1..999, default ${HISTORY_MAX}: the history keeps the last ${HISTORY_MAX} events, so a larger limit answers at most ${HISTORY_MAX}`,
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['events'],
            properties: { events: { type: 'array', items: { $ref: 'AlarmEvent#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId, alarmId } = request.params;
      // as the alarm itself: its delivery errors name the webhook's host
      await resolveInstance(meta, principal, instanceId, 'manage');
      if ((await meta.alarms.get(principal.tenantId, instanceId, alarmId)) === null) {
        throw new WharfError('AlarmNotFound', `no alarm ${alarmId}`);
      }
      const limit = Math.min(HISTORY_MAX, request.query.limit ?? HISTORY_MAX);
      const events = await meta.alarmStates.history(principal.tenantId, instanceId, alarmId, limit);
      return { events: events.map(({ seq, ...event }) => ({ ...event, notification: seq })) };
    },
  );
}
