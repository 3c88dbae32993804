// Query, trace, statistics (permission `query`), replay and dead letters. Resetting a group's
// position and resending dead letters change what a group will receive, so they need `manage`;
// listing dead letters is a read (`query`).
import type { FastifyInstance } from 'fastify';
import type { ResetTarget } from '../../cluster/index.js';
import { WharfError } from '../../errors.js';
import type { RouteContext } from '../context.js';
import { deadLetterView, messageView } from '../message-codec.js';
import { principalOf, resolveGroup, resolveTopic } from '../plugins/tenancy.js';
import { TENANT_ERRORS, epochMs, errorResponses, tenantSecurity } from '../schemas/common.js';
import { messageBodies, messageQueries } from '../schemas/messages.js';
import {
  groupParams,
  instanceParam,
  topicGroupParams,
  topicParam,
  topicParams,
  type GroupParams,
  type TopicGroupParams,
  type TopicParams,
} from './params.js';

const base = { config: { plane: 'tenant' as const } };
const schemaBase = { tags: ['query'], security: tenantSecurity };
const DEFAULT_LIMIT = 32;

// any spelling but an id's is MessageNotFound (an over-long one too), decided in code
const messageIdParam = { type: 'string', minLength: 1 } as const;
const messageParams = {
  type: 'object',
  required: ['instanceId', 'topic', 'messageId'],
  properties: { instanceId: instanceParam, topic: topicParam, messageId: messageIdParam },
} as const;
interface MessageParams extends TopicParams {
  messageId: string;
}

const page = (items: string) => ({
  type: 'object',
  required: ['messages'],
  properties: {
    messages: { type: 'array', items: { $ref: `${items}#` } },
    nextCursor: { type: 'string', description: 'absent on the last page' },
  },
});

export function queryRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta, brokers } = ctx;

  app.get<{ Params: MessageParams }>(
    '/v1/instances/:instanceId/topics/:topic/messages/:messageId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'A message by id, with its state in each group',
        params: messageParams,
        response: { 200: { $ref: 'MessageView#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const { instanceId, topic, messageId } = request.params;
      const t = await resolveTopic(meta, principalOf(request), instanceId, topic, 'query');
      return messageView(await brokers.getMessage(t, messageId));
    },
  );

  app.delete<{ Params: MessageParams }>(
    '/v1/instances/:instanceId/topics/:topic/messages/:messageId',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Cancel a delayed message not yet delivered',
        description:
          'The cancel is durable when answered: the message is never delivered. Once delivered: ' +
          '409 `Conflict`.',
        params: messageParams,
        response: {
          204: { description: 'Cancelled', type: 'null' },
          ...errorResponses(...TENANT_ERRORS, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const { instanceId, topic, messageId } = request.params;
      const t = await resolveTopic(meta, principalOf(request), instanceId, topic, 'publish');
      await brokers.cancelMessage(t, messageId);
      return reply.code(204).send();
    },
  );

  app.get<{
    Params: TopicParams;
    Querystring: { key?: string; from?: number; to?: number; limit?: number; cursor?: string };
  }>(
    '/v1/instances/:instanceId/topics/:topic/messages',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Messages by key (`key`) or by store time (`from`, `to`, paged)',
        description:
          'By key: the newest `limit` messages with that key, one page with no `nextCursor`; ' +
          '`limit` messages in the answer means older ones may exist (a query by time finds ' +
          'them). By store time: pages of `limit`, `nextCursor` absent on the last.',
        params: topicParams,
        querystring: messageQueries.list,
        response: { 200: page('MessageView'), ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const { instanceId, topic } = request.params;
      const t = await resolveTopic(meta, principalOf(request), instanceId, topic, 'query');
      const { key, from, to, cursor } = request.query;
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      if (key !== undefined) {
        if (from !== undefined || to !== undefined) {
          throw new WharfError('InvalidArgument', 'query by key or by time, not both');
        }
        if (cursor !== undefined) {
          throw new WharfError(
            'InvalidArgument',
            'a query by key is one page (the newest messages with the key): a cursor pages a query by time',
          );
        }
        const messages = await brokers.queryByKey(t, key, limit);
        return { messages: messages.map(messageView) };
      }
      if (from === undefined) {
        throw new WharfError('InvalidArgument', 'give key, or from (and to) epoch ms');
      }
      const fromMs = from;
      const toMs = to ?? Date.now();
      if (fromMs > toMs) throw new WharfError('InvalidArgument', 'from must not be after to');
      const result = await brokers.queryByTime(t, {
        fromMs,
        toMs,
        limit,
        ...(cursor === undefined ? {} : { cursor }),
      });
      return {
        messages: result.messages.map(messageView),
        ...(result.nextCursor === undefined ? {} : { nextCursor: result.nextCursor }),
      };
    },
  );

  app.get<{ Params: MessageParams }>(
    '/v1/instances/:instanceId/topics/:topic/messages/:messageId/trace',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'The life of a message: published, delivered, acked, retried…',
        params: messageParams,
        response: {
          200: {
            type: 'object',
            required: ['events'],
            properties: { events: { type: 'array', items: { $ref: 'TraceEvent#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const { instanceId, topic, messageId } = request.params;
      const t = await resolveTopic(meta, principalOf(request), instanceId, topic, 'query');
      return { events: await brokers.trace(t, messageId) };
    },
  );

  app.post<{ Params: TopicGroupParams; Body: { to: ResetTarget } }>(
    '/v1/instances/:instanceId/topics/:topic/groups/:group/reset',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: "Move the group's position on the topic (earliest, latest or a store time)",
        params: topicGroupParams,
        body: messageBodies.reset,
        response: {
          200: {
            type: 'object',
            required: ['topic', 'group', 'to'],
            properties: {
              topic: { type: 'string' },
              group: { type: 'string' },
              to: { oneOf: [{ type: 'string' }, epochMs] },
            },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId, topic, group } = request.params;
      const t = await resolveTopic(meta, principal, instanceId, topic, 'manage');
      const g = await resolveGroup(meta, principal, instanceId, group, 'manage');
      await brokers.resetGroup(t, g, request.body.to);
      return { topic, group, to: request.body.to };
    },
  );

  app.get<{ Params: GroupParams; Querystring: { limit?: number; cursor?: string } }>(
    '/v1/instances/:instanceId/groups/:group/dead-letters',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: "The group's dead-lettered messages (paged)",
        params: groupParams,
        querystring: messageQueries.page,
        response: { 200: page('DeadLetter'), ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const { instanceId, group } = request.params;
      const g = await resolveGroup(meta, principalOf(request), instanceId, group, 'query');
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const result = await brokers.deadLetters(g, limit, request.query.cursor);
      return {
        messages: result.messages.map(deadLetterView),
        ...(result.nextCursor === undefined ? {} : { nextCursor: result.nextCursor }),
      };
    },
  );

  app.post<{ Params: GroupParams; Body: { messageIds: string[] } }>(
    '/v1/instances/:instanceId/groups/:group/dead-letters/resend',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Deliver dead-lettered messages to the group again',
        params: groupParams,
        body: messageBodies.resend,
        response: {
          200: {
            type: 'object',
            required: ['results'],
            properties: {
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['messageId', 'ok'],
                  properties: {
                    messageId: { type: 'string' },
                    ok: { type: 'boolean' },
                    code: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errorResponses(...TENANT_ERRORS, 404),
        },
      },
    },
    async (request) => {
      const { instanceId, group } = request.params;
      const g = await resolveGroup(meta, principalOf(request), instanceId, group, 'manage');
      return { results: await brokers.resendDeadLetters(g, request.body.messageIds) };
    },
  );

  app.get<{ Params: TopicParams }>(
    '/v1/instances/:instanceId/topics/:topic/stats',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Messages and bytes in, publish rate, per-queue offsets',
        params: topicParams,
        response: { 200: { $ref: 'TopicStats#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const { instanceId, topic } = request.params;
      const t = await resolveTopic(meta, principalOf(request), instanceId, topic, 'query');
      const { messagesIn, bytesIn, publishRatePerSecond, queues } = await brokers.topicStats(t);
      return { messagesIn, bytesIn, publishRatePerSecond, queues };
    },
  );

  app.get<{ Params: TopicGroupParams }>(
    '/v1/instances/:instanceId/topics/:topic/groups/:group/stats',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Backlog, in-flight, oldest unacked age, rates, retries, dead letters',
        params: topicGroupParams,
        response: { 200: { $ref: 'GroupStats#' }, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId, topic, group } = request.params;
      const t = await resolveTopic(meta, principal, instanceId, topic, 'query');
      const g = await resolveGroup(meta, principal, instanceId, group, 'query');
      return brokers.groupStats(t, g);
    },
  );
}
