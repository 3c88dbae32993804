// The bytes of message bodies a gateway holds in receive answers not yet read by their clients,
// all connections together. A receive asks its broker for no more than what is left (at most one
// answer's 16 MiB; at least one message when nothing is left), and holds what it got until its
// answer is out or its connection gone: a thousand parked receives of big messages answered at
// once, read slowly or not at all, no longer hold 16 MiB each. Shared as the request bodies'
// budget is (plugins/body.ts): once the budget is more than half full, one tenant holds no more
// than its share, so a tenant whose clients leave their answers unread cannot take the room every
// other tenant's answers need.
export class AnswerBudget {
  private held = 0;
  private readonly byTenant = new Map<string, number>();
  readonly tenantShareBytes: number;

  constructor(
    readonly limitBytes: number,
    private readonly onChange: (heldBytes: number) => void = () => undefined,
    /** The share is a quarter of the budget, and at least one answer of this size. */
    largestAnswerBytes = 0,
  ) {
    this.tenantShareBytes = Math.max(
      Math.floor(limitBytes / 4),
      Math.min(largestAnswerBytes, limitBytes),
    );
  }

  /** Bytes of bodies an answer for `tenant` may carry now (0: only its one first message): what
   *  the budget has left, and past its half what is left of the tenant's share. */
  available(tenant: string): number {
    const left = this.limitBytes - this.held;
    const own = Math.max(
      this.limitBytes / 2 - this.held,
      this.tenantShareBytes - (this.byTenant.get(tenant) ?? 0),
    );
    return Math.max(0, Math.floor(Math.min(left, own)));
  }

  /** Whether `tenant`'s answers not yet out hold its whole share while the budget is more than
   *  half full: its next receive is refused (429), as a body past its share is, rather than
   *  answered with the one first message every answer may carry — one message a receive, over
   *  many receives left unread, would fill the budget all the same. */
  overShare(tenant: string): boolean {
    return (
      this.held >= this.limitBytes / 2 && (this.byTenant.get(tenant) ?? 0) >= this.tenantShareBytes
    );
  }

  /** Holds `bytes` for `tenant` (it may pass the limit: a first message always goes); the
   *  release is idempotent. */
  hold(bytes: number, tenant: string): () => void {
    this.held += bytes;
    this.byTenant.set(tenant, (this.byTenant.get(tenant) ?? 0) + bytes);
    this.onChange(this.held);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      const left = (this.byTenant.get(tenant) ?? 0) - bytes;
      if (left > 0) this.byTenant.set(tenant, left);
      else this.byTenant.delete(tenant);
      this.onChange(this.held);
    };
  }
}
