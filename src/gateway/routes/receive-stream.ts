// The streaming receive (as Google Pub/Sub's StreamingPull and RocketMQ 5's receive stream): one
// long-lived signed response that carries messages as they land, one JSON object a line, with
// flow control by outstanding count — at most maxOutstanding delivered and not yet acked (acks go
// to the existing ack route; one through this gateway frees credit at once, elsewhere at the
// message's nextVisibleTime). Each batch is one receive under the same rules as the plain route
// (receiveForClient: quota, parked bound, abort on hang-up or closing, 403 on revocation). The
// stream ends after durationSeconds with a last line `{"end":"DURATION"}`, or `{"end":"CLOSING"}`
// when the gateway shuts down, or `{"end":"ERROR","error":{code,message}}`; messages taken by a
// batch that could not be written are made visible again at once.
import { PassThrough } from 'node:stream';
import { setImmediate as setImmediatePromise, setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { returnUnseen } from '../../cluster/index.js';
import { isWharfError, WharfError } from '../../errors.js';
import { isRedisUnavailable } from '../../meta/index.js';
import type { ReceivedMessage } from '../../model/index.js';
import type { RouteContext } from '../context.js';
import { receiveForClient, resolveReceiveTarget } from '../long-poll-receive.js';
import { PARKED_RECHECK_MS } from '../parked-polls.js';
import { receivedLines } from '../received-json.js';
import { principalOf, revalidatePrincipal } from '../plugins/tenancy.js';
import { TENANT_ERRORS, errorResponses, tenantSecurity } from '../schemas/common.js';
import { messageBodies } from '../schemas/messages.js';
import { topicGroupParams, type TopicGroupParams } from './params.js';

interface StreamBody {
  maxOutstanding: number;
  durationSeconds: number;
  tags: string;
  invisibleSeconds?: number;
  consumerId?: string;
}

/** How long one batch waits for messages before the loop looks again (ends, closing). */
const POLL_SECONDS = 20;
/** Messages one batch takes at most (within its credit and a receive answer's byte bound): fewer,
 *  larger pops and writes than a plain receive's 32. 128 drained 9–22% faster than 32 in
 *  `bench:e2e` (wharf-stream, four interleaved pairs of runs on the 2-core machine); 512 no
 *  faster. */
const BATCH_MAX_MESSAGES = 128;
/** A receive refused by the consume rate quota is tried again after this. */
const THROTTLED_PAUSE_MS = 100;
/** How long a stream's client may go without reading, once its end line is written, before its
 *  connection is dropped: one that stopped reading would hold the response, and a graceful
 *  shutdown waiting for it, for good. */
export const STREAM_END_GRACE_MS = 5_000;

export function receiveStreamRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { brokers } = ctx;
  app.post<{ Params: TopicGroupParams; Body: StreamBody }>(
    '/v1/instances/:instanceId/topics/:topic/groups/:group/receive-stream',
    {
      config: { plane: 'tenant' as const },
      schema: {
        tags: ['messages'],
        security: tenantSecurity,
        summary: 'Stream messages as they land (NDJSON), at most maxOutstanding unacked',
        params: topicGroupParams,
        body: messageBodies.receiveStream,
        response: {
          200: {
            description:
              'one ReceivedMessage (as in receiveMessages) a line as messages land, then a last line {"end": "DURATION" | "CLOSING" | "ERROR", "error"?: {code, message}}',
            content: { 'application/x-ndjson': { schema: { type: 'string' } } },
          },
          ...errorResponses(...TENANT_ERRORS, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      const target = { ...request.params, consumerId: body.consumerId };
      let { topic: t, group: g } = await resolveReceiveTarget(ctx, principal, target);
      const stream = ctx.receiveStreams.open(principal.tenantId, body.maxOutstanding);
      const out = new PassThrough();
      const ended = new AbortController();
      // on the monotonic clock: a wall clock stepped back must not stretch the stream
      const endAt = performance.now() + body.durationSeconds * 1000;
      const hangUp = (): void => ended.abort();
      reply.raw.once('close', hangUp);
      // a client that left while it was authenticated and its names looked up: its 'close' has
      // come and gone, and the stream would hold its slot (and park) for its whole duration
      if (reply.raw.destroyed) hangUp();
      ctx.closing.addEventListener('abort', hangUp, { once: true });
      const endTimer = setTimeout(hangUp, body.durationSeconds * 1000);

      // messages received for a client that left before they were written: back, unseen
      const giveBack = async (messages: readonly ReceivedMessage[]): Promise<void> => {
        await returnUnseen(brokers, t, g, messages);
      };

      const pump = async (): Promise<string> => {
        let resolved = true; // t and g were just looked up
        while (!ended.signal.aborted) {
          // the deadline by the clock, not only by endTimer: a receive of no wait that finds
          // nothing can answer without leaving the microtask queue, so past endAt (before the
          // timer's turn) the loop would spin and starve the very timer that ends it
          const remainingMs = endAt - performance.now();
          if (remainingMs <= 0) break;
          const credit = stream.credit();
          if (credit <= 0) {
            // a stream held at its credit looks at its credential as a parked receive does: a
            // key revoked, a tenant suspended or a token expired meanwhile ends it (with Redis
            // away the credential it had serves on)
            await stream.waitForCredit(ended.signal, PARKED_RECHECK_MS);
            const revoked = await revalidatePrincipal(ctx.meta, principal).catch(() => null);
            if (revoked !== null) throw revoked;
            continue;
          }
          // looked up again each batch, as each plain receive does (from the metadata cache):
          // a topic or group deleted under the stream ends it (404 code on the end line)
          // instead of receiving on for a name the broker no longer has state for — it would
          // start a new cursor there and deliver the topic's messages again
          // (with Redis away past the cache's time, the names last resolved serve on, as warm
          // routes do)
          if (!resolved) {
            try {
              ({ topic: t, group: g } = await resolveReceiveTarget(ctx, principal, target));
            } catch (error) {
              if (!isUnavailable(error)) {
                // a tenant deleted under the stream took its instance with it: the credential's
                // own refusal (the code a new request gets) says more than InstanceNotFound
                throw (await revalidatePrincipal(ctx.meta, principal).catch(() => null)) ?? error;
              }
            }
            if (ended.signal.aborted) break; // the client left during the lookup
          }
          resolved = false;
          let received: ReceivedMessage[];
          try {
            received = await receiveForClient(ctx, request, reply, principal, {
              topic: t,
              group: g,
              maxMessages: Math.min(BATCH_MAX_MESSAGES, credit),
              streamed: true,
              waitSeconds: Math.min(POLL_SECONDS, Math.max(0, endAt - performance.now()) / 1000),
              tags: body.tags,
              ...(body.invisibleSeconds === undefined
                ? {}
                : { invisibleSeconds: body.invisibleSeconds }),
              ...(body.consumerId === undefined ? {} : { consumerId: body.consumerId }),
            });
          } catch (error) {
            // throttled, or Redis not answering (the names and credential are checked again
            // each batch): pause, then go on as warm routes do
            if ((isWharfError(error) && error.code === 'Throttled') || isRedisUnavailable(error)) {
              await sleep(THROTTLED_PAUSE_MS, undefined, { signal: ended.signal }).catch(
                () => undefined, // aborted: the loop ends
              );
              continue;
            }
            throw error;
          }
          if (received.length === 0) {
            // a receive can answer empty at once (its subscription dropped, the broker
            // closing): let timers and I/O have their turn before the next one
            await setImmediatePromise();
            continue;
          }
          if (ended.signal.aborted || out.destroyed) {
            await giveBack(received);
            break;
          }
          stream.delivered(received);
          if (!out.write(receivedLines(received))) await drained(out, ended.signal);
        }
        return ctx.closing.aborted ? 'CLOSING' : 'DURATION';
      };

      pump()
        .then(
          (reason) => endLine({ end: reason }),
          (error: unknown) => {
            const e = isWharfError(error)
              ? error
              : isRedisUnavailable(error)
                ? new WharfError('Unavailable', 'the metadata store is unreachable')
                : new WharfError('Internal', 'the stream failed');
            if (!isWharfError(error)) request.log.error({ err: error }, 'streaming receive failed');
            return endLine({ end: 'ERROR', error: { code: e.code, message: e.message } });
          },
        )
        .finally(() => {
          clearTimeout(endTimer);
          ctx.closing.removeEventListener('abort', hangUp);
          stream.close();
        });

      function endLine(line: unknown): void {
        if (out.destroyed) return;
        out.end(`${JSON.stringify(line)}\n`);
        // what the client has not taken by then is dropped with its connection (those messages
        // come back at their nextVisibleTime, as for a client that left)
        const response = reply.raw;
        if (response.writableFinished || response.destroyed) return;
        const stopped = (): void => {
          request.log.warn('a streaming receive client stopped reading: connection dropped');
          response.destroy();
        };
        let drop = setTimeout(stopped, STREAM_END_GRACE_MS);
        // a client still reading (slowly) has its grace counted again at each step it takes
        const reading = (): void => {
          clearTimeout(drop);
          drop = setTimeout(stopped, STREAM_END_GRACE_MS);
        };
        response.on('drain', reading);
        response.once('close', () => {
          clearTimeout(drop);
          response.off('drain', reading);
        });
      }

      // the headers go out now, not with the first message (which may be a while)
      reply.raw.once('pipe', () => reply.raw.flushHeaders());
      reply.header('content-type', 'application/x-ndjson');
      reply.header('cache-control', 'no-store');
      return reply.send(out);
    },
  );
}

function drained(out: PassThrough, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A refusal to wait out: a broker or Redis not answering (as a WharfError or ioredis's own). */
function isUnavailable(error: unknown): boolean {
  return (isWharfError(error) && error.code === 'Unavailable') || isRedisUnavailable(error);
}
