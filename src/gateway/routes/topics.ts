// Topics. PUT is idempotent: 201 when created, 200 when unchanged or updated (queueCount may
// grow, retention and dedup window may change); another messageType answers 409
// MessageTypeMismatch; the tenant's maxTopics is checked atomically with the creation.
import type { FastifyInstance } from 'fastify';
import type { MessageType } from '../../model/index.js';
import { WharfError } from '../../errors.js';
import type { TopicRecord } from '../../meta/index.js';
import { dropFromBrokers, type RouteContext } from '../context.js';
import { principalOf, resolveInstance, resolveTopic } from '../plugins/tenancy.js';
import { TENANT_ERRORS, errorResponses, tenantSecurity } from '../schemas/common.js';
import { bodies } from '../schemas/resources.js';
import { instanceParams, topicParams, type InstanceParams, type TopicParams } from './params.js';

const base = { config: { plane: 'tenant' as const } };
const schemaBase = { tags: ['topics'], security: tenantSecurity };

export function topicView(t: TopicRecord) {
  return {
    topic: t.topic,
    instanceId: t.instanceId,
    messageType: t.messageType,
    queueCount: t.queueCount,
    retentionHours: t.retentionHours,
    dedupWindowSeconds: Math.round(t.dedupWindowMs / 1000),
    createdAt: t.createdAt,
  };
}

interface PutTopicBody {
  messageType: MessageType;
  queueCount: number;
  retentionHours: number;
  dedupWindowSeconds: number;
}

export function topicRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;

  app.put<{ Params: TopicParams; Body: PutTopicBody }>(
    '/v1/instances/:instanceId/topics/:topic',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Create or update a topic (idempotent)',
        params: topicParams,
        body: bodies.putTopic,
        response: {
          200: { $ref: 'Topic#', description: 'Unchanged or updated' },
          201: { $ref: 'Topic#', description: 'Created' },
          ...errorResponses(...TENANT_ERRORS, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { instanceId, topic } = request.params;
      await resolveInstance(meta, principal, instanceId, 'manage');
      const body = request.body;
      if (body.dedupWindowSeconds > body.retentionHours * 3600) {
        throw new WharfError('InvalidArgument', 'dedupWindowSeconds must not exceed the retention');
      }
      const { status, record } = await meta.putTopic({
        tenantId: principal.tenantId,
        instanceId,
        topic,
        messageType: body.messageType,
        queueCount: body.queueCount,
        retentionHours: body.retentionHours,
        dedupWindowMs: body.dedupWindowSeconds * 1000,
        createdAt: Date.now(),
      });
      return reply.code(status === 'created' ? 201 : 200).send(topicView(record));
    },
  );

  app.get<{ Params: InstanceParams }>(
    '/v1/instances/:instanceId/topics',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'List topics',
        params: instanceParams,
        response: {
          200: {
            type: 'object',
            required: ['topics'],
            properties: { topics: { type: 'array', items: { $ref: 'Topic#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await resolveInstance(meta, principal, request.params.instanceId, 'read');
      const topics = await meta.topicList(principal.tenantId, request.params.instanceId);
      return { topics: topics.map(topicView) };
    },
  );

  app.get<{ Params: TopicParams }>(
    '/v1/instances/:instanceId/topics/:topic',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Get a topic',
        params: topicParams,
        response: { 200: { $ref: 'Topic#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const { instanceId, topic } = request.params;
      return topicView(await resolveTopic(meta, principalOf(request), instanceId, topic, 'read'));
    },
  );

  app.delete<{ Params: TopicParams }>(
    '/v1/instances/:instanceId/topics/:topic',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Delete a topic and its messages',
        params: topicParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { instanceId, topic } = request.params;
      await resolveInstance(meta, principal, instanceId, 'manage');
      const deleted = await meta.deleteTopic(principal.tenantId, instanceId, topic);
      if (deleted === null) throw new WharfError('TopicNotFound', `no topic ${topic}`);
      await dropFromBrokers(ctx, [deleted], []);
      return reply.code(204).send();
    },
  );
}
