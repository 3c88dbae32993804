// What a network transport gives the network BrokerClient: one call = one request frame out, one
// answer frame (response or error) back, multiplexed by request id, bounded in flight, cancelled
// at the broker when its signal aborts. Also the pieces both transports share: the in-flight
// bound, the reconnect back-off and the Unavailable they answer when the broker cannot be reached.
import type { Socket } from 'node:net';
import { WharfError } from '../errors.js';
import type { BrokerRpcOperation, Frame } from '../protocol/index.js';

export interface RpcChannel {
  /**
   * Sends `request` (a whole frame) and resolves with the broker's answer frame. Rejects with
   * `Unavailable` when the broker cannot be reached or the connection drops before the answer;
   * with `signal.reason` when the signal aborts first (the broker is told to drop the call).
   */
  call(
    requestId: number,
    op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
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
