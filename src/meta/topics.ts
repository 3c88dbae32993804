// Topics of an instance. PUT is idempotent: same settings → unchanged; another messageType →
// MessageTypeMismatch; queueCount may grow but never shrink (messages in a removed queue would
// be stranded), and a FIFO topic's never changes (a sharding key moved to a new queue would have
// its next messages delivered before its unacked ones); retentionHours and the dedup window may
// change.
import { InstanceResourceRepository } from './instance-resources.js';
import { TOPIC } from './records.js';
import type { RepoContext } from './repo-context.js';
import type { TopicRecord } from './types.js';

export class TopicRepository extends InstanceResourceRepository<TopicRecord> {
  constructor(ctx: RepoContext) {
    super(ctx, {
      counter: 'topics',
      quota: 'maxTopics',
      immutableField: 'messageType',
      immutableCode: -4,
      growOnlyField: 'queueCount',
      fixedWhen: (topic) => topic.messageType === 'FIFO',
      noun: 'topic',
      schema: TOPIC,
    });
  }

  protected hashKey(tenantId: string, instanceId: string): string {
    return this.ctx.keys.topics(tenantId, instanceId);
  }

  protected spec(t: TopicRecord): string {
    return JSON.stringify([t.queueCount, t.retentionHours, t.dedupWindowMs]);
  }

  protected order(a: TopicRecord, b: TopicRecord): number {
    return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0;
  }
}
