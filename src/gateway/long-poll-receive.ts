// One receive for a client request, shared by the /v1 receive route and the MQ HTTP consume
// route: the consume rate quota (a receive asks for no more than the bucket holds and debits
// what it got), the long poll under the gateway's ParkedPolls (per-tenant bound, abort on hang-up
// or closing, 403 once its credential stops holding — what the broker handed out meanwhile is
// made visible again), and the delivered messages and bytes counted for metrics and usage.
// Also one transaction check for a client (the /v1 check route and MQ HTTP `trans=pop`), under
// the same parking and the same answer budget.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { returnUnseen } from '../cluster/index.js';
import { WharfError } from '../errors.js';
import type {
  CheckedMessage,
  GroupDescriptor,
  ReceivedMessage,
  TopicDescriptor,
} from '../model/index.js';
import type { RouteContext } from './context.js';
import { resolveGroup, resolveTopic } from './plugins/tenancy.js';
import type { TenantPrincipal } from './types.js';

/** What a /v1 receive (plain or streaming) names in its path and body. */
export interface ReceiveTarget {
  instanceId: string;
  topic: string;
  group: string;
  consumerId?: string | undefined;
}

/** The topic and group a /v1 receive reads, with consume permission; a BROADCASTING group
 *  without consumerId is 400. */
export async function resolveReceiveTarget(
  ctx: RouteContext,
  principal: TenantPrincipal,
  target: ReceiveTarget,
): Promise<{ topic: TopicDescriptor; group: GroupDescriptor }> {
  const { instanceId } = target;
  const topic = await resolveTopic(ctx.meta, principal, instanceId, target.topic, 'consume');
  const group = await resolveGroup(ctx.meta, principal, instanceId, target.group, 'consume');
  if (group.deliveryMode === 'BROADCASTING' && target.consumerId === undefined) {
    throw new WharfError('InvalidArgument', 'a BROADCASTING group needs consumerId');
  }
  return { topic, group };
}

/** The bodies one receive answer carries at most (at least one message): 32 bodies of 4 MiB
 *  would make an answer of 170 MiB held whole by the gateway until the client reads it. */
export const MAX_ANSWER_BODY_BYTES = 16 * 1024 * 1024;

/** How long an answer waits for the give-back of what did not fit it. */
const GIVE_BACK_WAIT_MS = 1000;

/** Bytes of bodies an answer may carry now: one answer's at most, and what the gateway's answers
 *  not yet out leave the tenant (a stream's batch: one answer's, its flow control is by count). */
function answerRoom(
  ctx: RouteContext,
  call: { streamed?: boolean; topic: { tenantId: string } },
): number {
  if (call.streamed === true) return MAX_ANSWER_BODY_BYTES;
  return Math.min(MAX_ANSWER_BODY_BYTES, ctx.answers.available(call.topic.tenantId));
}

/** 429 for a receive or check of a tenant whose answers not yet read by its clients hold its
 *  share of the gateway's answer budget while that budget is more than half full. */
function refuseOverShare(ctx: RouteContext, tenantId: string): void {
  if (!ctx.answers.overShare(tenantId)) return;
  throw new WharfError(
    'Throttled',
    "this tenant's answers not yet read by its clients hold its share of the gateway's " +
      'answer budget; read them, or retry shortly',
    { retryAfterMs: 1000 },
  );
}

/** Holds an answer's `bodyBytes` against the answer budget until it is out or its connection
 *  gone. */
function holdAnswer(
  ctx: RouteContext,
  reply: FastifyReply,
  tenantId: string,
  bodyBytes: number,
): void {
  if (bodyBytes === 0) return;
  const release = ctx.answers.hold(bodyBytes, tenantId);
  if (reply.raw.destroyed) release();
  else reply.raw.once('finish', release).once('close', release);
}

/** How many of `messages` fit one answer of `maxBytes` of bodies (at least one). */
export function answerLength(
  messages: readonly { body: { length: number } }[],
  maxBytes = MAX_ANSWER_BODY_BYTES,
): number {
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    bytes += messages[i].body.length;
    if (bytes > maxBytes && i > 0) return i;
  }
  return messages.length;
}

export interface ClientReceive {
  topic: TopicDescriptor;
  group: GroupDescriptor;
  maxMessages: number;
  waitSeconds: number;
  tags: string;
  invisibleSeconds?: number;
  consumerId?: string;
  /** A batch of a streaming receive: written to the stream at once, its bytes are the stream's
   *  own (flow control by outstanding count), not held against the gateway's answer budget. */
  streamed?: boolean;
}

/** Receives for `principal` as the request asks; the messages are counted and debited. */
export async function receiveForClient(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  principal: TenantPrincipal,
  call: ClientReceive,
): Promise<ReceivedMessage[]> {
  const { brokers, limiter, metrics } = ctx;
  const rate = principal.tenant.quotas.consumePerSecond;
  limiter.requireOne(principal.tenantId, 'consume', rate);
  const maxMessages = Math.min(
    call.maxMessages,
    limiter.available(principal.tenantId, 'consume', rate),
  );
  if (call.streamed !== true) refuseOverShare(ctx, call.topic.tenantId);
  const maxBodyBytes = Math.max(1, answerRoom(ctx, call));
  const received = await ctx.parkedPolls.run(request, reply, principal, {
    what: 'receive',
    waitMs: call.waitSeconds * 1000,
    poll: (waitMs, signal) =>
      brokers.receive(
        call.topic,
        call.group,
        {
          maxMessages,
          waitMs,
          tags: call.tags,
          // the broker reads no more than one answer carries (a broker of an earlier version
          // ignores it: the answer is cut below, the rest given back)
          maxBodyBytes,
          ...(call.invisibleSeconds === undefined
            ? {}
            : { invisibleMs: call.invisibleSeconds * 1000 }),
          ...(call.consumerId === undefined ? {} : { consumerId: call.consumerId }),
        },
        signal,
      ),
    giveBack: releaseAll,
  });
  // cut to what is left now (other receives may have been answered while this one was parked;
  // at least one message), and held at once
  const over = received.splice(answerLength(received, answerRoom(ctx, call)));
  const bodyBytes = received.reduce((sum, m) => sum + m.body.length, 0);
  if (call.streamed !== true) holdAnswer(ctx, reply, call.topic.tenantId, bodyBytes);
  // given back unseen before the answer (the next receive has them), waited for 1 s at most: a
  // stalled broker must not hold the answer the client is waiting for
  if (over.length > 0) {
    const giving = releaseAll(over);
    await Promise.race([giving, sleep(GIVE_BACK_WAIT_MS, undefined, { ref: false })]);
  }
  limiter.debit(principal.tenantId, 'consume', rate, received.length);
  metrics.messagesReceived.inc({ tenant: principal.tenantId }, received.length);
  const { tenantId } = principal;
  const { instanceId } = call.topic;
  ctx.usage.count(tenantId, instanceId, 'messagesDelivered', received.length);
  ctx.usage.count(tenantId, instanceId, 'bytesDelivered', bodyBytes);
  return received;

  /** Messages taken by a receive whose credential stopped holding, or past what one answer
   *  carries, go back to the group, unseen: the delivery does not count. */
  async function releaseAll(messages: readonly ReceivedMessage[]): Promise<void> {
    if (!(await returnUnseen(brokers, call.topic, call.group, messages))) {
      request.log.warn(
        { messages: messages.length },
        'messages taken by a receive but not answered stay invisible until their deadline',
      );
    }
  }
}

/**
 * One check for half messages due for a decision, shared by the /v1 check route and the MQ HTTP
 * `trans=pop` consume: a long poll under the gateway's ParkedPolls (per-tenant bound, abort on
 * hang-up or closing, 403 once revoked), its answer held against the answer budget as a
 * receive's is. Offers cannot be taken back, so an answer is not cut after the fact: the room
 * is held while the check waits, the broker offers no more than it (at least one), and keeps
 * what does not fit due.
 */
export async function checkForClient(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  principal: TenantPrincipal,
  call: { topic: TopicDescriptor; maxMessages: number; waitSeconds: number },
): Promise<CheckedMessage[]> {
  const tenantId = call.topic.tenantId;
  refuseOverShare(ctx, tenantId);
  // The room the broker may fill is held while the check waits: a receive's answer is cut to
  // what is left when it comes, a check's offers are not, so checks parked together and
  // answered together would each carry the room they saw when they parked.
  const room = Math.max(1, answerRoom(ctx, call));
  const reserved = ctx.answers.hold(room, tenantId);
  let offered: CheckedMessage[];
  try {
    offered = await ctx.parkedPolls.run(request, reply, principal, {
      what: 'transaction check',
      waitMs: call.waitSeconds * 1000,
      poll: (waitMs, signal) =>
        ctx.brokers.checkTransactions(
          call.topic,
          { maxMessages: call.maxMessages, waitMs, maxBodyBytes: room },
          signal,
        ),
      // an offer that does not reach its producer is an unanswered one: it is offered again
      // after its back-off, like any offer nobody answered
      giveBack: () => Promise.resolve(),
    });
  } finally {
    reserved();
  }
  // the reservation swapped for what was offered, in the same turn
  holdAnswer(
    ctx,
    reply,
    tenantId,
    offered.reduce((sum, m) => sum + m.body.length, 0),
  );
  return offered;
}
