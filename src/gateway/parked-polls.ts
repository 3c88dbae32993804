// Long polls parked in this gateway — receive and transaction check-back — under one set of
// rules: at most `maxPerTenant` parked per tenant (429 Throttled past it, over both routes), each
// ended by the client hanging up or the gateway closing, and each re-checking its credential every
// PARKED_RECHECK_MS: once its key is revoked or its tenant suspended it answers 403, and whatever
// the broker handed out meanwhile is given back (a received message made visible again) instead
// of reaching a caller that no longer holds.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isWharfError, WharfError } from '../errors.js';
import type { MetaStore } from '../meta/index.js';
import type { GatewayMetrics } from '../telemetry/index.js';
import { revalidatePrincipal } from './plugins/tenancy.js';
import type { TenantPrincipal } from './types.js';

/**
 * Default of long polls one tenant may park on one gateway; past it, a waiting call is refused
 * with 429 so that one tenant cannot hold every socket of a gateway (the broker bounds its own).
 */
export const MAX_PARKED_PER_TENANT = 1000;
/**
 * How often a parked poll checks that its key and tenant still hold (a cache lookup). With the
 * cache invalidated by pub/sub a revocation is seen within this; without pub/sub within this plus
 * the cache TTL (4 s by default).
 */
export const PARKED_RECHECK_MS = 1000;

export interface ParkedPollsOptions {
  meta: MetaStore;
  metrics: GatewayMetrics;
  /** Aborted when the gateway starts closing: parked polls answer at once. */
  closing: AbortSignal;
  maxPerTenant?: number;
}

export interface ParkedPoll<T> {
  /** What the poll is, for logs ("receive", "transaction check"). */
  what: string;
  /** How long the caller asked to wait; 0 does not park (and is not bounded). */
  waitMs: number;
  /** The broker call; `waitMs` is 0 once the gateway is closing. */
  poll(waitMs: number, signal: AbortSignal): Promise<T[]>;
  /** Gives back what a poll whose credential stopped holding was handed. */
  giveBack(taken: readonly T[]): Promise<void>;
}

export class ParkedPolls {
  private readonly byTenant = new Map<string, number>();
  private readonly maxPerTenant: number;

  constructor(private readonly options: ParkedPollsOptions) {
    this.maxPerTenant = options.maxPerTenant ?? MAX_PARKED_PER_TENANT;
  }

  /** Runs one poll for `principal` under the rules above; its answer, or a WharfError. */
  async run<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    principal: TenantPrincipal,
    call: ParkedPoll<T>,
  ): Promise<T[]> {
    const { closing, metrics } = this.options;
    // every poll runs after its handler resolved the instance (call accounting counts a poll the
    // client leaves by this, not by a metadata cache entry that may have expired meanwhile)
    request.instanceResolved = true;
    const parked = call.waitMs > 0;
    const tenantParked = this.byTenant.get(principal.tenantId) ?? 0;
    if (parked && tenantParked >= this.maxPerTenant) {
      throw new WharfError('Throttled', `over ${this.maxPerTenant} waiting long polls`, {
        retryAfterMs: 1000,
      });
    }
    if (parked) {
      this.byTenant.set(principal.tenantId, tenantParked + 1);
      metrics.parkedReceives.inc();
    }
    // Fires when the client hangs up before the answer, when the gateway starts closing, or
    // when a parked poll's credential stops holding. One controller per call with listeners and
    // the timer removed in `finally` (no signal outlives it).
    const abort = new AbortController();
    const signal = abort.signal;
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    const onClosing = () => abort.abort();
    reply.raw.once('close', onClose);
    // a client that left while its credential and names were being looked up: its 'close' has
    // come and gone, and the poll would stay parked, then take messages nobody sees
    if (reply.raw.destroyed) onClose();
    closing.addEventListener('abort', onClosing, { once: true });
    let revoked: WharfError | null = null;
    let checking = false;
    let warned = false;
    const recheck = async (): Promise<WharfError | null> => {
      try {
        return await revalidatePrincipal(this.options.meta, principal);
      } catch (err) {
        // Redis unreachable: the credential was valid and nothing says otherwise; keep waiting
        // (logged once per poll, not once a second)
        if (!warned) request.log.warn({ err }, `parked ${call.what} could not re-check its key`);
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
      let taken: T[];
      try {
        taken = await call.poll(closing.aborted ? 0 : call.waitMs, signal);
      } catch (err) {
        // An aborted poll took nothing: answer it empty (the client, if still there, polls
        // again) — or 403 when its credential was revoked meanwhile.
        if (signal.aborted && !isWharfError(err)) taken = [];
        else throw err;
      }
      if (taken.length > 0 && reply.raw.destroyed) {
        // the client left while its messages were being taken: nobody can see them
        await call.giveBack(taken);
        return [];
      }
      if (parked) {
        // What was taken while the credential stopped holding (between two checks) is not
        // handed to it: it is given back at once. An empty answer is checked too: deleting a
        // tenant drops its instances, which ends their polls empty before the next check.
        revoked ??= await recheck();
        if (revoked !== null) {
          if (taken.length > 0) await call.giveBack(taken);
          request.log.info(
            { tenantId: principal.tenantId, accessKeyId: principal.accessKeyId },
            `parked ${call.what} ended: ${revoked.message}`,
          );
          throw revoked;
        }
      }
      return taken;
    } finally {
      if (timer !== undefined) clearInterval(timer);
      if (parked) {
        const left = (this.byTenant.get(principal.tenantId) ?? 1) - 1;
        if (left > 0) this.byTenant.set(principal.tenantId, left);
        else this.byTenant.delete(principal.tenantId);
        metrics.parkedReceives.dec();
      }
      reply.raw.off('close', onClose);
      closing.removeEventListener('abort', onClosing);
    }
  }
}
