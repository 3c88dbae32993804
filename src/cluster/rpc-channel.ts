// What a network transport gives the network BrokerClient: one call = one request frame out, one
// answer frame (response or error) back, multiplexed by request id, bounded in flight, cancelled
// at the broker when its signal aborts. Also the pieces every transport shares: the in-flight
// bound, the reconnect back-off and the Unavailable they answer when the broker cannot be reached.
import type { Socket } from 'node:net';
import { WharfError } from '../errors.js';
import type { BrokerRpcOperation, Frame } from '../protocol/index.js';

export interface RpcChannel {
  /**
   * Sends `request` (a whole frame) and resolves with the broker's answer frame. Rejects with
   * `Unavailable` when the broker cannot be reached or the connection drops before the answer;
   * with `signal.reason` when the signal aborts first (the broker is told to drop the call).
   * `onLateAnswer` takes an answer that arrives after the abort (the broker answered before it
   * saw the cancel), so that a receive's late messages are not silently dropped. A signal that
   * aborts with a TimeoutError (the call's deadline) counts as a missed deadline: a connection
   * that misses several in a row without a frame between them is replaced.
   */
  call(
    requestId: number,
    op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
    onLateAnswer?: (frame: Frame) => void,
  ): Promise<Frame>;
  /** Stops new calls, lets the calls in flight finish, then closes the connection. */
  close(): Promise<void>;
}

export interface ChannelOptions {
  /** Calls in flight on the connection; more wait for a slot (back-pressure). Default 256. */
  maxInFlight?: number;
  /** How long a connection attempt may take. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** First wait after a failed connection; doubles up to `maxBackoffMs`. Default 50 ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** The retry-after an Unavailable answer carries. Default 1000 ms. */
  retryAfterMs?: number;
  /** Deadlines missed in a row, with no frame from the broker between them, after which the
   *  connection is taken as dead (a half-open one: peer gone without FIN or RST) and replaced.
   *  Default 3. */
  maxMissedDeadlines?: number;
}

/** Whether a call's signal aborted for its deadline (AbortSignal.timeout), not its caller: the
 *  broker owed an answer and none came. */
export function isMissedDeadline(reason: unknown): boolean {
  return reason instanceof DOMException && reason.name === 'TimeoutError';
}

export function unavailable(message: string, retryAfterMs: number, cause?: unknown): WharfError {
  return new WharfError('Unavailable', message, { retryAfterMs, cause });
}

/** Slots for calls in flight: a call over the bound waits, in order, until one is released or
 *  its signal aborts (its deadline counts the wait). */
export class InFlightLimit {
  private used = 0;
  private readonly waiting: { grant: () => void }[] = [];

  constructor(readonly max: number) {}

  get inFlight(): number {
    return this.used;
  }

  get queued(): number {
    return this.waiting.length;
  }

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.used < this.max) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          this.used++;
          resolve();
        },
      };
      const onAbort = (): void => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  release(): void {
    this.used--;
    this.waiting.shift()?.grant();
  }
}

/** Exponential back-off between connection attempts: while it runs, calls fail fast with
 *  Unavailable instead of each waiting for its own connect timeout. */
export class Backoff {
  private failures = 0;
  private notBeforeMs = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {}

  get waiting(): boolean {
    return Date.now() < this.notBeforeMs;
  }

  failed(): void {
    const delay = Math.min(this.maxMs, this.minMs * 2 ** this.failures);
    this.failures++;
    this.notBeforeMs = Date.now() + delay;
  }

  succeeded(): void {
    this.failures = 0;
    this.notBeforeMs = 0;
  }
}

/** Writes `bytes`, gathering every frame written in the same tick into one writev: a group
 *  commit answers many publishes at once, and one syscall for all of them is the cheap way. */
export function writeGathered(socket: Socket, bytes: Buffer): void {
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(() => socket.uncork());
  }
  socket.write(bytes);
}

/**
 * What every transport's client does the same way around its connection `C`: the in-flight
 * bound, one connection opened on first use and again after a drop (one attempt at a time, with
 * back-off; fast Unavailable while backing off), and the call skeleton. A transport supplies
 * `current` (its live connection), `dial` (one attempt) and `exchange` (one call on it; the
 * frame-stream transports share theirs, multiplexed-channel.ts).
 */
export abstract class BoundedChannel<C> implements RpcChannel {
  protected readonly limit: InFlightLimit;
  protected readonly backoff: Backoff;
  protected readonly retryAfterMs: number;
  protected readonly connectTimeoutMs: number;
  protected closing = false;
  protected connecting: Promise<C> | null = null;
  private onIdle: (() => void) | null = null;
  private idle: Promise<void> | null = null;

  constructor(options: ChannelOptions) {
    this.limit = new InFlightLimit(options.maxInFlight ?? 256);
    this.backoff = new Backoff(options.minBackoffMs ?? 50, options.maxBackoffMs ?? 2000);
    this.retryAfterMs = options.retryAfterMs ?? 1000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  }

  get inFlight(): number {
    return this.limit.inFlight;
  }

  get queued(): number {
    return this.limit.queued;
  }

  async call(
    requestId: number,
    op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
    onLateAnswer?: (frame: Frame) => void,
  ): Promise<Frame> {
    if (this.closing) throw unavailable('broker client closed', this.retryAfterMs);
    await this.limit.acquire(signal);
    try {
      const connection = await this.connection();
      if (signal.aborted) throw signal.reason as Error;
      return await this.exchange(connection, requestId, op, request, signal, onLateAnswer);
    } finally {
      this.limit.release();
      if (this.limit.inFlight === 0 && this.limit.queued === 0) {
        this.onIdle?.();
        this.onIdle = null;
        this.idle = null;
      }
    }
  }

  abstract close(): Promise<void>;

  /** The live connection, or null when there is none. */
  protected abstract current(): C | null;
  /** One connection attempt (within connectTimeoutMs); rejects with the cause. */
  protected abstract dial(): Promise<C>;
  /** One call on `connection`; rejects with `signal.reason` when the signal aborts first (a
   *  transport that can still see a late answer hands it to `onLateAnswer`). */
  protected abstract exchange(
    connection: C,
    requestId: number,
    op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
    onLateAnswer?: (frame: Frame) => void,
  ): Promise<Frame>;

  /** Resolves once no call is in flight or waiting (for a graceful close). */
  protected whenIdle(): Promise<void> {
    if (this.limit.inFlight === 0 && this.limit.queued === 0) return Promise.resolve();
    // one promise for every waiter: a second close() must not orphan the first
    this.idle ??= new Promise<void>((resolve) => (this.onIdle = resolve));
    return this.idle;
  }

  private connection(): Promise<C> {
    const live = this.current();
    if (live !== null) return Promise.resolve(live);
    if (this.connecting !== null) return this.connecting;
    if (this.backoff.waiting) {
      return Promise.reject(unavailable('broker unreachable (backing off)', this.retryAfterMs));
    }
    this.connecting = this.dial().then(
      (connection) => {
        this.connecting = null;
        this.backoff.succeeded();
        return connection;
      },
      (error: unknown) => {
        this.connecting = null;
        this.backoff.failed();
        throw unavailable('broker unreachable', this.retryAfterMs, error);
      },
    );
    return this.connecting;
  }
}
