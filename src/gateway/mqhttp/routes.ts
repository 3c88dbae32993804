// The MQ HTTP routes: one path, `/topics/{topic}/messages`, whose method and query pick the
// operation (query read by name: `ns` = instance, `consumer` = group, `trans` = order | pop |
// commit | rollback). They authenticate with the MQ signature (plugins/tenancy.ts, plane
// `mqhttp`) and then go the way of the /v1 routes: same resolution of instance, topic and group
// under the key's permissions, same quotas, same BrokerClient calls (so trace, statistics and
// metrics are shared), answers encoded as the protocol's XML. Refusals are answered in XML by the
// gateway's error handler (error-codes.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WharfError, isWharfError } from '../../errors.js';
import type { TopicDescriptor } from '../../model/index.js';
import type { RouteContext } from '../context.js';
import { checkForClient, receiveForClient } from '../long-poll-receive.js';
import { messageBytes } from '../message-codec.js';
import { countPublished } from '../published-counts.js';
import { principalOf, resolveGroup, resolveTopic } from '../plugins/tenancy.js';
import { EMPTY_BODY } from '../plugins/body.js';
import { TAG_FILTER_PATTERN } from '../schemas/messages.js';
import type { TenantPrincipal } from '../types.js';
import { checkContentMd5 } from './authenticate.js';
import { MQ_CONTENT_TYPE, mqRefusal, type MqErrorCode } from './error-codes.js';
import { mqHalfMessageOf, mqMessageOf, toPublishMessage } from './message-mapping.js';
import {
  decodePublishRequest,
  decodeReceiptHandles,
  encodeHandleErrors,
  encodeMessages,
  encodePublishAnswer,
  type HandleError,
} from './xml-codec.js';

export const MQ_PATH = '/topics/:topic/messages';
/** Most messages one consume may ask for, and longest wait (the protocol's limits). */
export const MAX_CONSUME_MESSAGES = 16;
export const MAX_WAIT_SECONDS = 30;

// XML, not JSON: left out of the OpenAPI document (API.md names them; MQHTTP.md describes them)
const base = { config: { plane: 'mqhttp' as const }, schema: { hide: true } };
const TAG_FILTER = new RegExp(TAG_FILTER_PATTERN, 'u');

type Query = Record<string, string | undefined>;
interface Params {
  topic: string;
}

function queryOf(request: FastifyRequest): Query {
  const out: Query = {};
  const query = request.query as Record<string, unknown> | undefined;
  for (const [name, value] of Object.entries(query ?? {})) {
    const first: unknown = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') out[name] = first;
  }
  return out;
}

function integerIn(query: Query, name: string, min: number, max: number, dflt?: number): number {
  const text = query[name];
  if (text === undefined && dflt !== undefined) return dflt;
  if (text === undefined || !/^\d{1,6}$/.test(text) || +text < min || +text > max) {
    throw new WharfError('InvalidArgument', `${name} must be an integer from ${min} to ${max}`);
  }
  return Number(text);
}

function groupName(query: Query): string {
  const consumer = query.consumer;
  if (consumer === undefined || consumer === '') {
    throw new WharfError('InvalidArgument', 'the consumer query parameter is required');
  }
  return consumer;
}

/** `ns`, or the tenant's only instance when the SDK left it out. */
async function instanceIdOf(
  ctx: RouteContext,
  principal: TenantPrincipal,
  query: Query,
): Promise<string> {
  if (query.ns !== undefined && query.ns !== '') return query.ns;
  const instances = await ctx.meta.instanceList(principal.tenantId);
  if (instances.length === 1) return instances[0].instanceId;
  throw new WharfError(
    'InvalidArgument',
    instances.length === 0 ? 'the tenant has no instance' : 'name the instance (ns)',
  );
}

function xml(request: FastifyRequest, reply: FastifyReply, status: number, body?: string) {
  reply.code(status).header('x-mq-request-id', request.id);
  if (body === undefined) return reply.send();
  return reply.type(MQ_CONTENT_TYPE).send(body);
}

/** The answer of an ack / commit / rollback: 204, or 404 listing the failed handles. */
function handleAnswer(request: FastifyRequest, reply: FastifyReply, failed: HandleError[]) {
  if (failed.length === 0) return xml(request, reply, 204);
  return xml(request, reply, 404, encodeHandleErrors(failed));
}

const HANDLE_MESSAGES: Record<'ReceiptHandleError' | 'MessageNotExist', string> = {
  ReceiptHandleError: 'the receipt handle is malformed, forged, or not of this group and topic',
  MessageNotExist: 'the delivery of this handle is over (acked, redelivered or decided)',
};

function handleError(code: 'ReceiptHandleError' | 'MessageNotExist', handle: string) {
  return { code, message: HANDLE_MESSAGES[code], receiptHandle: handle };
}

export function mqHttpRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta, brokers, limiter } = ctx;

  app.post<{ Params: Params }>(MQ_PATH, base, async (request, reply) => {
    const principal = principalOf(request);
    const raw = request.rawBody ?? EMPTY_BODY;
    checkContentMd5(request, raw);
    const query = queryOf(request);
    const instanceId = await instanceIdOf(ctx, principal, query);
    request.usageOf = { instanceId, apiClass: 'apiCallsPublish' }; // usage: the path does not name it
    const topic = await resolveTopic(meta, principal, instanceId, request.params.topic, 'publish');
    const message = toPublishMessage(decodePublishRequest(raw), topic.messageType, Date.now());
    const quotas = principal.tenant.quotas;
    const bytes = messageBytes(message);
    if (bytes > quotas.maxMessageBytes) {
      throw new WharfError(
        'MessageTooLarge',
        `the message is ${bytes} bytes, over the limit of ${quotas.maxMessageBytes}`,
      );
    }
    limiter.take(principal.tenantId, 'publish', quotas.publishPerSecond, 1);
    const [result] = await brokers.publish(topic, [message]).catch((error: unknown) => {
      // not stored: the client's retry is charged again, so this attempt is not
      limiter.refund(principal.tenantId, 'publish', quotas.publishPerSecond, 1);
      throw error;
    });
    countPublished(ctx, principal.tenantId, instanceId, [bytes], [result]);
    return xml(
      request,
      reply,
      201,
      encodePublishAnswer({
        messageId: result.messageId,
        bodyMd5: result.bodyMd5.toUpperCase(),
        ...(result.transactionId === undefined ? {} : { receiptHandle: result.transactionId }),
      }),
    );
  });

  // no HEAD twin (fastify adds one to every GET): a consume takes messages, and a HEAD would
  // take them and throw them away
  app.get<{ Params: Params }>(
    MQ_PATH,
    { ...base, exposeHeadRoute: false },
    async (request, reply) => {
      const principal = principalOf(request);
      const query = queryOf(request);
      const group = groupName(query);
      const maxMessages = integerIn(query, 'numOfMessages', 1, MAX_CONSUME_MESSAGES, 16);
      const waitSeconds = integerIn(query, 'waitseconds', 0, MAX_WAIT_SECONDS, 0);
      const trans = query.trans;
      if (trans !== undefined && trans !== 'order' && trans !== 'pop') {
        throw new WharfError('InvalidArgument', 'trans must be order or pop on a consume');
      }
      const tags = query.tag === undefined || query.tag === '' ? '*' : query.tag;
      if (!TAG_FILTER.test(tags)) throw new WharfError('InvalidArgument', 'tag must be * or A||B');
      const instanceId = await instanceIdOf(ctx, principal, query);
      request.usageOf = { instanceId, apiClass: 'apiCallsConsume' }; // usage: the path does not name it
      const { topic: name } = request.params;

      if (trans === 'pop') {
        const topic = await resolveTopic(meta, principal, instanceId, name, 'publish');
        await resolveGroup(meta, principal, instanceId, group, 'publish');
        const offered =
          topic.messageType === 'TRANSACTION'
            ? await checkForClient(ctx, request, reply, principal, {
                topic,
                maxMessages,
                waitSeconds,
              })
            : [];
        const now = Date.now();
        if (offered.length === 0) throw noMessage();
        return xml(
          request,
          reply,
          200,
          encodeMessages(offered.map((m) => mqHalfMessageOf(m, now))),
        );
      }

      // trans=order: FIFO topics hand out a queue's next message only once the earlier ones are
      // acked, for every consume; on other topics there is no order to keep.
      const topic = await resolveTopic(meta, principal, instanceId, name, 'consume');
      const groupDescriptor = await resolveGroup(meta, principal, instanceId, group, 'consume');
      if (groupDescriptor.deliveryMode === 'BROADCASTING') {
        throw new WharfError(
          'InvalidArgument',
          'BROADCASTING groups need a consumer id, which this protocol has not: use /v1',
        );
      }
      const received = await receiveForClient(ctx, request, reply, principal, {
        topic,
        group: groupDescriptor,
        maxMessages,
        waitSeconds,
        tags,
      });
      if (received.length === 0) throw noMessage();
      return xml(request, reply, 200, encodeMessages(received.map(mqMessageOf)));
    },
  );

  app.delete<{ Params: Params }>(MQ_PATH, base, async (request, reply) => {
    const principal = principalOf(request);
    const raw = request.rawBody ?? EMPTY_BODY;
    checkContentMd5(request, raw);
    const query = queryOf(request);
    const group = groupName(query);
    const trans = query.trans;
    if (trans !== undefined && trans !== 'commit' && trans !== 'rollback') {
      throw new WharfError('InvalidArgument', 'trans must be commit or rollback on a DELETE');
    }
    const handles = decodeReceiptHandles(raw);
    const instanceId = await instanceIdOf(ctx, principal, query);
    request.usageOf = {
      instanceId,
      apiClass: trans === undefined ? 'apiCallsConsume' : 'apiCallsPublish',
    }; // usage: the path does not name it
    const { topic: name } = request.params;

    if (trans !== undefined) {
      if (handles.length !== 1) {
        throw new WharfError('InvalidArgument', `a ${trans} takes exactly one ReceiptHandle`);
      }
      const topic = await resolveTopic(meta, principal, instanceId, name, 'publish');
      await resolveGroup(meta, principal, instanceId, group, 'publish');
      const failure = await decide(topic, trans, handles[0]);
      return handleAnswer(request, reply, failure === null ? [] : [failure]);
    }
    const topic = await resolveTopic(meta, principal, instanceId, name, 'consume');
    const groupDescriptor = await resolveGroup(meta, principal, instanceId, group, 'consume');
    const results = await brokers.ack(topic, groupDescriptor, handles);
    // a /v1 streaming receive's handles may be acked here too: their credit comes back
    ctx.receiveStreams.acked(results);
    ctx.usage.count(
      principal.tenantId,
      instanceId,
      'messagesAcked',
      results.filter((r) => r.ok).length,
    );
    // a broker holding some of them down (cluster): the protocol has no per-handle code for it,
    // so the answer is the retriable 503 it gave before (the others were acked; retried, they
    // answer MessageNotExist)
    const unavailable = results.find((r) => !r.ok && r.code === 'Unavailable');
    if (unavailable !== undefined)
      throw new WharfError('Unavailable', 'a broker holding some of these messages is down', {
        retryAfterMs: 1000,
      });
    const failed: HandleError[] = [];
    for (const r of results) {
      if (r.ok) continue;
      failed.push(
        handleError(
          r.code === 'ReceiptHandleExpired' ? 'MessageNotExist' : 'ReceiptHandleError',
          r.receiptHandle,
        ),
      );
    }
    return handleAnswer(request, reply, failed);
  });

  /** Commits or rolls back; a handle that names no decidable half message is a handle error,
   *  and once decided (the same decision too, unlike /v1) the message no longer exists. */
  async function decide(
    topic: TopicDescriptor,
    decision: 'commit' | 'rollback',
    handle: string,
  ): Promise<HandleError | null> {
    if (topic.messageType !== 'TRANSACTION') return handleError('ReceiptHandleError', handle);
    try {
      if (decision === 'commit')
        await brokers.commitTransaction(topic, handle, { refuseRepeat: true });
      else await brokers.rollbackTransaction(topic, handle, { refuseRepeat: true });
      return null;
    } catch (err) {
      const code: MqErrorCode | undefined = isWharfError(err, 'TransactionNotFound')
        ? 'ReceiptHandleError'
        : isWharfError(err, 'Conflict')
          ? 'MessageNotExist'
          : undefined;
      if (code === undefined) throw err;
      return handleError(code, handle);
    }
  }
}

/** The protocol's answer to a consume that found nothing: an error, not an empty list. */
function noMessage(): WharfError {
  return mqRefusal('MessageNotFound', 'MessageNotExist', 'Message not exist.');
}
