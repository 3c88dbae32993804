// Topics. PUT is idempotent: 201 when created, 200 when unchanged or updated (queueCount may
// grow, except a FIFO topic's, which is fixed; retention and dedup window may change); another
// messageType answers 409 MessageTypeMismatch; the tenant's maxTopics is checked atomically
// with the creation.
import type { FastifyInstance } from 'fastify';
import type { MessageType } from '../../model/index.js';
import { WharfError } from '../../errors.js';
import type { TopicRecord } from '../../meta/index.js';
import { deleteResource, finishEarlierDelete, type RouteContext } from '../context.js';
import { resolveInstance, resolveTopic } from '../plugins/tenancy.js';
import { bodies } from '../schemas/resources.js';
import { topicParams } from './params.js';
import { instanceResourceRoutes } from './resource-routes.js';

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
  instanceResourceRoutes<'topic', PutTopicBody>(app, {
    plural: 'topics',
    nameParam: 'topic',
    params: topicParams,
    putBody: bodies.putTopic,
    ref: 'Topic#',
    summaries: {
      put: 'Create or update a topic (idempotent)',
      list: 'List topics',
      get: 'Get a topic',
      delete: 'Delete a topic and its messages',
    },
    putAnswers: { 200: 'Unchanged or updated', 201: 'Created' },
    putErrors: [404, 409],

    async put(principal, instanceId, topic, body) {
      await resolveInstance(meta, principal, instanceId, 'manage');
      await finishEarlierDelete(ctx, principal.tenantId, instanceId, 'topic', topic);
      await meta.refuseWhileDropping(principal.tenantId, instanceId, 'topic', topic);
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
      if (status !== 'unchanged' && ctx.brokers.placeTopic !== undefined) {
        // a cluster places the new queues now; if it cannot (no live broker, Redis away), the
        // first call that routes the topic places them
        await ctx.brokers.placeTopic(record).catch(() => undefined);
      }
      return { created: status === 'created', answer: topicView(record) };
    },

    async list(principal, instanceId) {
      await resolveInstance(meta, principal, instanceId, 'read');
      return (await meta.topicList(principal.tenantId, instanceId)).map(topicView);
    },

    async get(principal, instanceId, topic) {
      return topicView(await resolveTopic(meta, principal, instanceId, topic, 'read'));
    },

    async delete(principal, instanceId, topic) {
      await resolveInstance(meta, principal, instanceId, 'manage');
      const found = await deleteResource(ctx, principal.tenantId, instanceId, 'topic', topic);
      if (!found) throw new WharfError('TopicNotFound', `no topic ${topic}`);
    },
  });
}
