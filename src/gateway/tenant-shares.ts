// How a gateway budget of bytes (request bodies being received, receive answers not yet read) is
// shared between tenants: a tenant alone may fill half of it; past the half, one tenant holds no
// more than its share — a quarter of the budget, and at least the largest single item — so one
// tenant cannot take the room every other tenant needs.
export class TenantShares {
  private readonly byTenant = new Map<string, number>();
  readonly shareBytes: number;

  constructor(
    readonly limitBytes: number,
    /** The share is never under this (one body, one answer), nor over the limit. */
    largestBytes: number,
  ) {
    this.shareBytes = Math.max(Math.floor(limitBytes / 4), Math.min(largestBytes, limitBytes));
  }

  /** Bytes `tenant` may add when `heldBytes` are held over all tenants (the budget's own limit
   *  aside): up to the half, or up to its share. May be negative. */
  room(heldBytes: number, tenant: string): number {
    return Math.max(this.limitBytes / 2 - heldBytes, this.shareBytes - this.of(tenant));
  }

  /** Whether `tenant` holds its whole share while more than half of the budget is held. */
  full(heldBytes: number, tenant: string): boolean {
    return heldBytes > this.limitBytes / 2 && this.of(tenant) >= this.shareBytes;
  }

  of(tenant: string): number {
    return this.byTenant.get(tenant) ?? 0;
  }

  /** Adds (or, negative, takes back) `bytes` of `tenant`'s; no entry is kept at 0. */
  add(tenant: string, bytes: number): void {
    const held = this.of(tenant) + bytes;
    if (held > 0) this.byTenant.set(tenant, held);
    else this.byTenant.delete(tenant);
  }
}
