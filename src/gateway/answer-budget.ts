// The bytes of message bodies a gateway holds in receive answers not yet read by their clients,
// all connections together. A receive asks its broker for no more than what is left (at most one
// answer's 16 MiB; at least one message when nothing is left), and holds what it got until its
// answer is out or its connection gone: a thousand parked receives of big messages answered at
// once, read slowly or not at all, no longer hold 16 MiB each. Shared as the request bodies'
// budget is (plugins/body.ts): once the budget is more than half full, one tenant holds no more
// than its share (tenant-shares.ts), so a tenant whose clients leave their answers unread cannot
// take the room every other tenant's answers need.
import { TenantShares } from './tenant-shares.js';

export class AnswerBudget {
  private held = 0;
  private readonly shares: TenantShares;

  constructor(
    readonly limitBytes: number,
    private readonly onChange: (heldBytes: number) => void = () => undefined,
    /** The share is a quarter of the budget, and at least one answer of this size. */
    largestAnswerBytes = 0,
  ) {
    this.shares = new TenantShares(limitBytes, largestAnswerBytes);
  }

  get tenantShareBytes(): number {
    return this.shares.shareBytes;
  }

  /** Bytes of bodies an answer for `tenant` may carry now (0: only its one first message): what
   *  the budget has left, and past its half what is left of the tenant's share. */
  available(tenant: string): number {
    const left = this.limitBytes - this.held;
    return Math.max(0, Math.floor(Math.min(left, this.shares.room(this.held, tenant))));
  }

  /** Whether `tenant`'s answers not yet out hold its whole share while the budget is more than
   *  half full: its next receive is refused (429), as a body past its share is, rather than
   *  answered with the one first message every answer may carry — one message a receive, over
   *  many receives left unread, would fill the budget all the same. */
  overShare(tenant: string): boolean {
    return this.shares.full(this.held, tenant);
  }

  /** Holds `bytes` for `tenant` (it may pass the limit: a first message always goes); the
   *  release is idempotent. */
  hold(bytes: number, tenant: string): () => void {
    this.held += bytes;
    this.shares.add(tenant, bytes);
    this.onChange(this.held);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.shares.add(tenant, -bytes);
      this.onChange(this.held);
    };
  }
}
