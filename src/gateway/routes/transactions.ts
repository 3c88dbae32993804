// Transactions of a TRANSACTION topic: commit, rollback (both 204, idempotent; the contrary
// decision is 409 Conflict; an unknown, malformed or another tenant's id is 404
// TransactionNotFound) and check-back (a long poll offering undecided half messages past the
// topic's check delay, parked like a receive: ParkedPolls). All three are the producer's side of
// a publish: permission `publish`.
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';
import type { RouteContext } from '../context.js';
import { checkForClient } from '../long-poll-receive.js';
import { encodeBody } from '../message-codec.js';
import { principalOf, resolveTopic } from '../plugins/tenancy.js';
import { TENANT_ERRORS, errorResponses, tenantSecurity } from '../schemas/common.js';
import { transactionBodies } from '../schemas/transactions.js';
import { instanceParam, topicParam, topicParams, type TopicParams } from './params.js';

const base = { config: { plane: 'tenant' as const } };
const schemaBase = { tags: ['transactions'], security: tenantSecurity };

const transactionParams = {
  type: 'object',
  required: ['instanceId', 'topic', 'transactionId'],
  properties: {
    instanceId: instanceParam,
    topic: topicParam,
    // checked by the broker: a malformed id is a 404 like an unknown one
    transactionId: { type: 'string', minLength: 1 },
  },
} as const;
interface TransactionParams extends TopicParams {
  transactionId: string;
}

export function transactionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta, brokers } = ctx;

  for (const decision of ['commit', 'rollback'] as const) {
    app.post<{ Params: TransactionParams }>(
      `/v1/instances/:instanceId/topics/:topic/transactions/:transactionId/${decision}`,
      {
        ...base,
        schema: {
          ...schemaBase,
          summary:
            decision === 'commit'
              ? 'Make a half message deliverable (idempotent; 409 after a rollback)'
              : 'Discard a half message (idempotent; 409 after a commit)',
          params: transactionParams,
          response: {
            204: {
              description: 'decided (durably), or already decided the same way',
              type: 'null',
            },
            ...errorResponses(...TENANT_ERRORS, 404, 409),
          },
        },
      },
      async (request, reply) => {
        const { instanceId, topic, transactionId } = request.params;
        const t = await resolveTopic(meta, principalOf(request), instanceId, topic, 'publish');
        if (t.messageType !== 'TRANSACTION')
          throw new WharfError('TransactionNotFound', 'no such transaction');
        if (decision === 'commit') await brokers.commitTransaction(t, transactionId);
        else await brokers.rollbackTransaction(t, transactionId);
        return reply.code(204).send();
      },
    );
  }

  app.post<{ Params: TopicParams; Body: { maxMessages: number; waitSeconds: number } }>(
    '/v1/instances/:instanceId/topics/:topic/transactions/check',
    {
      ...base,
      schema: {
        ...schemaBase,
        summary: 'Half messages overdue for a decision (long poll)',
        params: topicParams,
        body: transactionBodies.check,
        response: {
          200: {
            type: 'object',
            required: ['messages'],
            properties: { messages: { type: 'array', items: { $ref: 'CheckedMessage#' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const { instanceId, topic } = request.params;
      const principal = principalOf(request);
      const t = await resolveTopic(meta, principal, instanceId, topic, 'publish');
      if (t.messageType !== 'TRANSACTION')
        throw new WharfError('InvalidArgument', `${topic} is not a TRANSACTION topic`);
      // parked under the same rules as a receive (cap, hang-up, credential re-check, answer budget)
      const messages = await checkForClient(ctx, request, reply, principal, {
        topic: t,
        maxMessages: request.body.maxMessages,
        waitSeconds: request.body.waitSeconds,
      });
      return {
        messages: messages.map((m) => ({ ...m, body: encodeBody(m.body, m.bodyEncoding) })),
      };
    },
  );
}
