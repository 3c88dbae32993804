// What a publish counts once its broker answered, for both publish routes (/v1 and Aliyun MQ
// HTTP): the messages it stored and their bytes, in /metrics and in the tenant's usage. A
// duplicate (its dedupId already stored on the topic) stored nothing and counts in neither; its
// call still counts, as every call does (call-accounting).
import type { PublishResult } from '../model/index.js';
import type { RouteContext } from './context.js';

export function countPublished(
  ctx: Pick<RouteContext, 'metrics' | 'usage'>,
  tenantId: string,
  instanceId: string,
  /** Each message's size as the maxMessageBytes quota counts it (messageBytes). */
  sizes: readonly number[],
  results: readonly PublishResult[],
): void {
  let stored = 0;
  let bytes = 0;
  for (let i = 0; i < sizes.length; i++) {
    if (results[i]?.duplicate === true) continue;
    stored++;
    bytes += sizes[i];
  }
  if (stored === 0) return;
  ctx.metrics.messagesPublished.inc({ tenant: tenantId }, stored);
  ctx.usage.count(tenantId, instanceId, 'messagesPublished', stored);
  ctx.usage.count(tenantId, instanceId, 'bytesPublished', bytes);
}
