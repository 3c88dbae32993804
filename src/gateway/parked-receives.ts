// The bound on long polls parked per tenant on one gateway, shared by every route that parks
// one (/v1 receive, MQ HTTP consume): past it a waiting receive is refused with 429.
import { WharfError } from '../errors.js';

/**
 * Default of long polls one tenant may park on one gateway; past it, a waiting receive is refused
 * with 429 so that one tenant cannot hold every socket of a gateway (the broker bounds its own).
 */
export const MAX_PARKED_PER_TENANT = 1000;
/** Long polls parked per tenant on this gateway, over every route that parks one. */
export class ParkedReceives {
  private readonly byTenant = new Map<string, number>();

  constructor(readonly maxPerTenant: number) {}

  /** Counts one more for the tenant, or throws Throttled when it has its maximum parked. */
  park(tenantId: string): void {
    const parked = this.byTenant.get(tenantId) ?? 0;
    if (parked >= this.maxPerTenant) {
      throw new WharfError('Throttled', `over ${this.maxPerTenant} waiting receives`, {
        retryAfterMs: 1000,
      });
    }
    this.byTenant.set(tenantId, parked + 1);
  }

  unpark(tenantId: string): void {
    const left = (this.byTenant.get(tenantId) ?? 1) - 1;
    if (left > 0) this.byTenant.set(tenantId, left);
    else this.byTenant.delete(tenantId);
  }
}
