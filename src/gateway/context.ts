// What route modules are given: the injected dependencies plus the gateway's own services.
import type { BrokerClient } from '../cluster/index.js';
import { WharfError } from '../errors.js';
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';
import type { MetaStore } from '../meta/index.js';
import type { GatewayMetrics, Logger } from '../telemetry/index.js';
import type { ParkedPolls } from './parked-polls.js';
import type { ReceiveStreams } from './receive-streams.js';
import type { AdminAuthenticator, TokenService } from './plugins/jwt.js';
import type { RateLimiter } from './plugins/quotas.js';
import type { AnswerBudget } from './answer-budget.js';
import type { UsageMeter } from './usage-meter.js';

export interface GatewayConfig {
  /** SigV4 region (WHARF_REGION). */
  region: string;
  adminToken?: string;
  adminJwtSecret?: string;
  adminJwksUrl?: string;
  /** Largest request body (default 8 MiB). */
  bodyLimitBytes?: number;
  /** Bytes of request bodies held at once over all connections (default 128 MiB; 503 past it). */
  bodiesInFlightBytes?: number;
  /** Bytes of message bodies held in receive answers not yet read, all connections together
   *  (default 256 MiB; past it an answer carries one message). */
  answersInFlightBytes?: number;
  /** A large answer (a receive of big messages) the client stops reading for this long is
   *  dropped with its connection. Default 30 s. */
  answerStallMs?: number;
  /** A request body that goes this long without a byte is given up (400). Default 15 s. */
  bodyIdleMs?: number;
  /** At close, how long the gateway serves on first, every answer with `connection: close` and
   *  /readyz 503, so clients and load balancers move off before the listener closes (idle
   *  keep-alive connections closed at once are reset under clients that just sent on them).
   *  Only while connections are open. Default 1000 ms; 0: none. */
  drainDelayMs?: number;
  /** Open connections from one client address (default 256; 0: no limit; 429 past it). */
  maxConnectionsPerAddress?: number;
  /** Serve Swagger UI at /docs (default true). */
  docs?: boolean;
  /** Long polls (receive and transaction check) one tenant may park on this gateway
   *  (default 1000). */
  maxParkedReceivesPerTenant?: number;
  /** Streaming receives one tenant may hold open on this gateway (default 100). */
  maxReceiveStreamsPerTenant?: number;
  /** Trust x-forwarded-* from a load balancer (default false). */
  trustProxy?: boolean;
  /** Webhook URLs may reach loopback, private and link-local hosts (WHARF_WEBHOOK_ALLOW_PRIVATE). */
  allowPrivateWebhooks?: boolean;
  /** Usage counters are flushed to Redis this often (default 10 000 ms). */
  usageFlushIntervalMs?: number;
  /** Resource statistics for /metrics are sampled this often (default 30 000 ms; 0: never). */
  statsSampleIntervalMs?: number;
  /** Labelled resource series per tenant in /metrics; the rest fold into "_other" (default 200). */
  maxStatsSeriesPerTenant?: number;
}

export interface RouteContext {
  meta: MetaStore;
  brokers: BrokerClient;
  config: GatewayConfig;
  logger: Logger;
  metrics: GatewayMetrics;
  tokens: TokenService;
  admin: AdminAuthenticator;
  limiter: RateLimiter;
  /** Usage counters of this gateway, flushed to Redis. */
  usage: UsageMeter;
  /** Aborted when the gateway starts closing: parked long polls answer at once. */
  closing: AbortSignal;
  /** Aborted when the gateway begins to stop: /readyz answers 503, answers end their connection. */
  draining: AbortSignal;
  /** Receive and check-back long polls parked in this gateway, bounded per tenant. */
  parkedPolls: ParkedPolls;
  /** Streaming receives open on this gateway and the handles they wait on (flow control). */
  receiveStreams: ReceiveStreams;
  /** Bytes of bodies in receive answers not yet out (answer-budget.ts). */
  answers: AnswerBudget;
}

/** How finishDeleteOf went: `none`, no delete of the name was left to finish; `finished`, its
 *  brokers took the drop (or it was left for them); `unfinished`, neither (the record stays for
 *  the next DELETE or create); `busy`, another call is finishing it; `live`, the name exists
 *  again (created by a gateway of an earlier version, which keeps no deleted records): its
 *  record is forgotten without a drop, which would delete the live one's data (brokers drop by
 *  name). */
export type DeleteFinish = 'none' | 'finished' | 'unfinished' | 'busy' | 'live';

/**
 * Finishes the delete of a topic or group whose deleted record is kept (delete-resource-3.lua):
 * its brokers drop it, then the record is forgotten and the name may be created again. The
 * finishing is claimed first (claim-deleted-3.lua), one call at a time: two calls dropping the
 * same record could otherwise interleave with a create, one forgetting it, the name created and
 * given messages, and the other's drop landing after and deleting them.
 */
export async function finishDeleteOf(
  ctx: RouteContext,
  tenantId: string,
  instanceId: string,
  kind: 'topic' | 'group',
  name: string,
): Promise<DeleteFinish> {
  const { meta } = ctx;
  const claimed =
    kind === 'topic'
      ? await meta.claimDeletedTopic(tenantId, instanceId, name)
      : await meta.claimDeletedGroup(tenantId, instanceId, name);
  if (claimed.status !== 'claimed') {
    if (claimed.status === 'live') await meta.forgetDeleted(kind, tenantId, instanceId, name);
    return claimed.status;
  }
  const { record, claim } = claimed;
  const taken =
    'messageType' in record
      ? await dropFromBrokers(ctx, [record], [])
      : await dropFromBrokers(ctx, [], [record]);
  if (!taken) {
    // kept for the next DELETE or create, which may claim it at once
    await meta.releaseDeletedClaim(kind, tenantId, instanceId, name, claim);
    return 'unfinished';
  }
  await meta.forgetDeleted(kind, tenantId, instanceId, name, claim);
  return 'finished';
}

/** Before a topic or group is created or changed: a delete of its name whose drop was not
 *  finished (its answer lost while Redis stalled) is finished first, so the name created again
 *  never meets the deleted one's messages, delayed messages or cursors. */
export async function finishEarlierDelete(
  ctx: RouteContext,
  tenantId: string,
  instanceId: string,
  kind: 'topic' | 'group',
  name: string,
): Promise<void> {
  const finish = await finishDeleteOf(ctx, tenantId, instanceId, kind, name);
  if (finish === 'unfinished' || finish === 'busy') {
    throw new WharfError(
      'Unavailable',
      `the ${kind} deleted under this name is still to be dropped: create it again shortly`,
      { retryAfterMs: 1000 },
    );
  }
}

/** A topic's or group's DELETE: deletes the record and finishes its drop — or that of an
 *  earlier delete of the name whose answer was lost (that DELETE answered 503 while Redis
 *  stalled, and Redis ran it after). False: there was nothing to delete (404). */
export async function deleteResource(
  ctx: RouteContext,
  tenantId: string,
  instanceId: string,
  kind: 'topic' | 'group',
  name: string,
): Promise<boolean> {
  const { meta } = ctx;
  // twice at most: a name found live again by the finishing (an earlier version's create) is
  // deleted in turn
  for (let attempt = 0; ; attempt++) {
    const removed =
      (kind === 'topic'
        ? await meta.deleteTopic(tenantId, instanceId, name)
        : await meta.deleteGroup(tenantId, instanceId, name)) !== null;
    const finish = await finishDeleteOf(ctx, tenantId, instanceId, kind, name);
    if (finish === 'live' && !removed && attempt === 0) continue;
    return removed || finish !== 'none';
  }
}

/**
 * Tells the brokers to forget deleted topics and groups; false when a drop failed. Metadata is already gone, so a failure
 * here cannot be undone by the client: a drop a broker does not take is left for it in Redis
 * (src/cluster/dropped-names.ts: the routing client, and the all-in-one node's wrapper), which it
 * applies when it can; what fails even so (Redis away as well) is logged with what to clean up.
 */
export async function dropFromBrokers(
  ctx: RouteContext,
  topics: readonly TopicDescriptor[],
  groups: readonly GroupDescriptor[],
  instances: readonly { tenantId: string; instanceId: string }[] = [],
): Promise<boolean> {
  const results = await Promise.allSettled([
    ...topics.map((t) => ctx.brokers.dropTopic(t)),
    ...groups.map((g) => ctx.brokers.dropGroup(g)),
  ]);
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      const what = i < topics.length ? { topic: topics[i] } : { group: groups[i - topics.length] };
      ctx.logger.error(
        { err: r.reason as unknown, ...what },
        'broker drop failed; data left behind',
      );
    }
  });
  // after its topics and groups: the instance's internal topics go and its data key is forgotten
  // (already deleted in Redis, so its sealed bodies stay unreadable even if this call fails)
  const dropped = await Promise.allSettled(
    instances.map((i) => ctx.brokers.dropInstance(i.tenantId, i.instanceId)),
  );
  dropped.forEach((r, i) => {
    if (r.status === 'rejected')
      ctx.logger.error(
        { err: r.reason as unknown, instance: instances[i] },
        'broker instance drop failed; its internal topics are left behind (bodies stay sealed)',
      );
  });
  return [...results, ...dropped].every((r) => r.status === 'fulfilled');
}
