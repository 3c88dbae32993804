// Consumer groups of an instance. PUT is idempotent: same settings → unchanged; the delivery
// mode cannot change (consumer progress is kept per mode: delete and recreate the group);
// maxDeliveryAttempts, invisibleSeconds and retryPolicy may change. `createdAt` never changes:
// the broker starts the group's reading of each topic there.
import { InstanceResourceRepository } from './instance-resources.js';
import { GROUP } from './records.js';
import type { RepoContext } from './repo-context.js';
import type { GroupRecord } from './types.js';

export class GroupRepository extends InstanceResourceRepository<GroupRecord> {
  constructor(ctx: RepoContext) {
    super(ctx, {
      counter: 'groups',
      quota: 'maxGroups',
      immutableField: 'deliveryMode',
      immutableCode: -5,
      growOnlyField: '',
      noun: 'group',
      schema: GROUP,
    });
  }

  protected hashKey(tenantId: string, instanceId: string): string {
    return this.ctx.keys.groups(tenantId, instanceId);
  }

  protected spec(g: GroupRecord): string {
    const p = g.retryPolicy;
    const policy =
      p === undefined
        ? null
        : 'backoffSeconds' in p
          ? { backoffSeconds: p.backoffSeconds }
          : {
              exponential: {
                initialSeconds: p.exponential.initialSeconds,
                multiplier: p.exponential.multiplier,
                maxSeconds: p.exponential.maxSeconds,
              },
            };
    return JSON.stringify([g.maxDeliveryAttempts, g.invisibleSeconds, policy]);
  }

  protected order(a: GroupRecord, b: GroupRecord): number {
    return a.group < b.group ? -1 : a.group > b.group ? 1 : 0;
  }
}
