// One receive for a client request, shared by the /v1 receive route and the MQ HTTP consume
// route: the consume rate quota (a receive asks for no more than the bucket holds and debits
// what it got), the per-tenant bound on parked long polls (429 past it), and an AbortSignal that
// fires when the client goes away, when the gateway starts closing, or when a parked receive's
// credential stops holding (key revoked, tenant suspended; checked every PARKED_RECHECK_MS): it
// then answers 403, and anything the broker handed out in the meantime is made visible again.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isWharfError, type WharfError } from '../errors.js';
import type { GroupDescriptor, ReceivedMessage, TopicDescriptor } from '../model/index.js';
import type { RouteContext } from './context.js';
import { revalidatePrincipal } from './plugins/tenancy.js';
import type { TenantPrincipal } from './types.js';

/**
 * How often a parked receive checks that its key and tenant still hold (a cache lookup). With
 * the cache invalidated by pub/sub a revocation is seen within this; without pub/sub within this
 * plus the cache TTL (4 s by default).
 */
export const PARKED_RECHECK_MS = 1000;

export interface ClientReceive {
  topic: TopicDescriptor;
  group: GroupDescriptor;
  maxMessages: number;
  waitSeconds: number;
  tags: string;
  invisibleSeconds?: number;
  consumerId?: string;
}

/** Receives for `principal` as the request asks; the messages are counted and debited. */
export async function receiveForClient(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  principal: TenantPrincipal,
  call: ClientReceive,
): Promise<ReceivedMessage[]> {
  const { meta, brokers, limiter, metrics } = ctx;
  const rate = principal.tenant.quotas.consumePerSecond;
  limiter.requireOne(principal.tenantId, 'consume', rate);
  const maxMessages = Math.min(
    call.maxMessages,
    limiter.available(principal.tenantId, 'consume', rate),
  );

  const parked = call.waitSeconds > 0;
  if (parked) {
    ctx.parkedReceives.park(principal.tenantId);
    metrics.parkedReceives.inc();
  }
  // Fires when the client hangs up before the answer, when the gateway starts closing, or
  // when a parked receive's credential stops holding. One controller per call with listeners
  // and the timer removed in `finally` (no signal outlives it).
  const abort = new AbortController();
  const signal = abort.signal;
  const onClose = () => {
    if (!reply.raw.writableFinished) abort.abort();
  };
  const onClosing = () => abort.abort();
  reply.raw.once('close', onClose);
  ctx.closing.addEventListener('abort', onClosing, { once: true });
  let revoked: WharfError | null = null;
  let checking = false;
  let warned = false;
  const recheck = async (): Promise<WharfError | null> => {
    try {
      return await revalidatePrincipal(meta, principal);
    } catch (err) {
      // Redis unreachable: the credential was valid and nothing says otherwise; keep waiting
      // (logged once per receive, not once a second)
      if (!warned) request.log.warn({ err }, 'parked receive could not re-check its credential');
      warned = true;
      return null;
    }
  };
  const timer = parked
    ? setInterval(() => {
        if (checking || revoked !== null) return;
        checking = true;
        void recheck().then((reason) => {
          checking = false;
          if (reason === null || revoked !== null) return;
          revoked = reason;
          abort.abort();
        });
      }, PARKED_RECHECK_MS).unref()
    : undefined;
  try {
    let received: ReceivedMessage[];
    try {
      received = await brokers.receive(
        call.topic,
        call.group,
        {
          maxMessages,
          waitMs: ctx.closing.aborted ? 0 : call.waitSeconds * 1000,
          tags: call.tags,
          ...(call.invisibleSeconds === undefined
            ? {}
            : { invisibleMs: call.invisibleSeconds * 1000 }),
          ...(call.consumerId === undefined ? {} : { consumerId: call.consumerId }),
        },
        signal,
      );
    } catch (err) {
      // An aborted poll took nothing: answer it empty (the client, if still there, polls
      // again) — or 403 when its credential was revoked meanwhile.
      if (signal.aborted && !isWharfError(err)) received = [];
      else throw err;
    }
    if (parked) {
      // Messages taken while the credential stopped holding (between two checks) are not
      // handed to it: they go back to the group at once.
      revoked ??= received.length > 0 ? await recheck() : null;
      if (revoked !== null) {
        await releaseAll(received);
        request.log.info(
          { tenantId: principal.tenantId, accessKeyId: principal.accessKeyId },
          `parked receive ended: ${revoked.message}`,
        );
        throw revoked;
      }
    }
    limiter.debit(principal.tenantId, 'consume', rate, received.length);
    metrics.messagesReceived.inc({ tenant: principal.tenantId }, received.length);
    return received;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    if (parked) {
      ctx.parkedReceives.unpark(principal.tenantId);
      metrics.parkedReceives.dec();
    }
    reply.raw.off('close', onClose);
    ctx.closing.removeEventListener('abort', onClosing);
  }

  async function releaseAll(messages: readonly ReceivedMessage[]): Promise<void> {
    const results = await Promise.allSettled(
      messages.map((m) => brokers.changeVisibility(call.topic, call.group, m.receiptHandle, 0)),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (failed > 0) {
      request.log.warn(
        { failed, of: messages.length },
        'messages taken by a revoked receive stay invisible until their deadline',
      );
    }
  }
}
