// The message path: publish, receive (long poll), ack and visibility. The gateway decides what
// it can alone — permission, rate quota, sizes, delay rules, BROADCASTING's consumerId — then
// calls the BrokerClient with the resolved descriptors and encodes its answer. A receive goes
// through receiveForClient (long-poll-receive.ts: quota, parked bound, abort on hang-up,
// closing or revocation), which the MQ HTTP consume route shares.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import type { RouteContext } from '../context.js';
import { messageBytes, toPublishMessage, type PublishInput } from '../message-codec.js';
import { countPublished } from '../published-counts.js';
import { receiveAnswer } from '../received-json.js';
import { receiveForClient, resolveReceiveTarget } from '../long-poll-receive.js';
import { principalOf, resolveGroup, resolveTopic } from '../plugins/tenancy.js';
import { TENANT_ERRORS, epochMs, errorResponses, tenantSecurity } from '../schemas/common.js';
import { MAX_BATCH_BYTES, messageBodies } from '../schemas/messages.js';
import {
  topicGroupParams,
  topicParams,
  type TopicGroupParams,
  type TopicParams,
} from './params.js';

const base = { config: { plane: 'tenant' as const } };

const schemaBase = { tags: ['messages'], security: tenantSecurity };

interface ReceiveBody {
  maxMessages: number;
  waitSeconds: number;
  tags: string;
  invisibleSeconds?: number;
  consumerId?: string;
}

export function messageRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta, brokers, limiter } = ctx;

  app.post<{ Params: TopicParams; Body: { messages: PublishInput[] } }>(
    '/v1/instances/:instanceId/topics/:topic/messages',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Publish 1 to 32 messages (answered once durable)',
        params: topicParams,
        body: messageBodies.publish,
        response: {
          200: {
            type: 'object',
            required: ['messages'],
            properties: { messages: { type: 'array', items: { $ref: 'PublishResult#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404, 413, 429),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId, topic } = request.params;
      const descriptor = await resolveTopic(meta, principal, instanceId, topic, 'publish');
      const quotas = principal.tenant.quotas;
      const now = Date.now();
      let batchBytes = 0;
      const sizes: number[] = [];
      const messages = request.body.messages.map((input, i) => {
        const message = toPublishMessage(input, descriptor.messageType, i, now);
        const bytes = messageBytes(message);
        if (bytes > quotas.maxMessageBytes) {
          throw new WharfError(
            'MessageTooLarge',
            `messages[${i}] is ${bytes} bytes, over the limit of ${quotas.maxMessageBytes}`,
          );
        }
        batchBytes += bytes;
        sizes.push(bytes);
        return message;
      });
      if (batchBytes > MAX_BATCH_BYTES) {
        throw new WharfError('MessageTooLarge', `the batch is ${batchBytes} bytes, over 4 MiB`);
      }
      limiter.take(principal.tenantId, 'publish', quotas.publishPerSecond, messages.length);
      const results = await brokers.publish(descriptor, messages).catch((error: unknown) => {
        // not stored: the client's retry is charged again, so this attempt is not
        limiter.refund(principal.tenantId, 'publish', quotas.publishPerSecond, messages.length);
        throw error;
      });
      countPublished(ctx, principal.tenantId, instanceId, sizes, results);
      return { messages: results };
    },
  );

  app.post<{ Params: TopicGroupParams; Body: ReceiveBody }>(
    '/v1/instances/:instanceId/topics/:topic/groups/:group/receive',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Receive up to 32 messages, waiting up to waitSeconds (long poll)',
        params: topicGroupParams,
        body: messageBodies.receive,
        response: {
          200: {
            type: 'object',
            required: ['messages'],
            properties: { messages: { type: 'array', items: { $ref: 'ReceivedMessage#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      const target = await resolveReceiveTarget(ctx, principal, {
        ...request.params,
        consumerId: body.consumerId,
      });
      const received = await receiveForClient(ctx, request, reply, principal, {
        ...target,
        maxMessages: body.maxMessages,
        waitSeconds: body.waitSeconds,
        tags: body.tags,
        ...(body.invisibleSeconds === undefined ? {} : { invisibleSeconds: body.invisibleSeconds }),
        ...(body.consumerId === undefined ? {} : { consumerId: body.consumerId }),
      });
      // the schema above documents the answer; receiveAnswer writes it (the same bytes)
      reply.header('content-type', 'application/json; charset=utf-8');
      return receiveAnswer(received);
    },
  );

  app.post<{ Params: TopicGroupParams; Body: { receiptHandles: string[] } }>(
    '/v1/instances/:instanceId/topics/:topic/groups/:group/ack',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Acknowledge 1 to 100 receipt handles (a result per handle)',
        params: topicGroupParams,
        body: messageBodies.ack,
        response: {
          200: {
            type: 'object',
            required: ['results'],
            properties: {
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['receiptHandle', 'ok'],
                  properties: {
                    receiptHandle: { type: 'string' },
                    ok: { type: 'boolean' },
                    code: {
                      type: 'string',
                      enum: ['ReceiptHandleExpired', 'InvalidReceiptHandle', 'Unavailable'],
                    },
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
      const principal = principalOf(request);
      const { instanceId, topic, group } = request.params;
      const t = await resolveTopic(meta, principal, instanceId, topic, 'consume');
      const g = await resolveGroup(meta, principal, instanceId, group, 'consume');
      const results = await brokers.ack(t, g, request.body.receiptHandles);
      ctx.receiveStreams.acked(results);
      ctx.usage.count(
        principal.tenantId,
        instanceId,
        'messagesAcked',
        results.filter((r) => r.ok).length,
      );
      return { results };
    },
  );

  app.post<{
    Params: TopicGroupParams;
    Body: { receiptHandle: string; invisibleSeconds: number };
  }>(
    '/v1/instances/:instanceId/topics/:topic/groups/:group/visibility',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Change when a received message becomes visible again (0: now)',
        params: topicGroupParams,
        body: messageBodies.visibility,
        response: {
          200: {
            type: 'object',
            required: ['receiptHandle', 'nextVisibleTime'],
            properties: { receiptHandle: { type: 'string' }, nextVisibleTime: epochMs },
          },
          ...errorResponses(...TENANT_ERRORS, 404, 410),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { instanceId, topic, group } = request.params;
      const t = await resolveTopic(meta, principal, instanceId, topic, 'consume');
      const g = await resolveGroup(meta, principal, instanceId, group, 'consume');
      const { receiptHandle, invisibleSeconds } = request.body;
      const answer = await brokers.changeVisibility(t, g, receiptHandle, invisibleSeconds * 1000);
      // a streaming receive's credit: freed by a release, held on by an extension
      ctx.receiveStreams.visibilityChanged(answer, invisibleSeconds === 0);
      return answer;
    },
  );
}
