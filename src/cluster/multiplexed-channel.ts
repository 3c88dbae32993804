// What the transports that carry frames back to back on one connection (TCP, a MessagePort)
// share on the client side: calls in flight keyed by request id, an answer handed to its call, a
// cancel frame when a call's signal aborts (the broker frees a parked receive), a cancelled
// call's late answer taken for a while, every call failed with Unavailable when the connection
// drops, and a connection that missed `maxMissedDeadlines` deadlines in a row with no frame
// received between them reset (a half-open connection would otherwise fail every call at its
// deadline for ever). A transport supplies how a frame is sent on its connection and how it is
// reset.
import {
  FrameKind,
  encodeBrokerRpcCancel,
  type BrokerRpcOperation,
  type Frame,
} from '../protocol/index.js';
import {
  BoundedChannel,
  isMissedDeadline,
  unavailable,
  type ChannelOptions,
} from './rpc-channel.js';

interface PendingCall {
  resolve(frame: Frame): void;
  reject(error: Error): void;
}

/** How long a cancelled call's late answer is still taken (a cancel crosses the wire in far
 *  less; past this the broker has long seen it and answers nothing). */
const LATE_ANSWER_WAIT_MS = 10_000;

/** How long a call must have waited on the wire, with nothing received, for its deadline to
 *  count as missed on a silent connection. */
const SILENCE_BEFORE_MISS_MS = 500;

export abstract class MultiplexedChannel<C> extends BoundedChannel<C> {
  private readonly pending = new Map<number, PendingCall>();
  private readonly maxMissedDeadlines: number;
  /** Deadlines missed on the current connection since its last frame. */
  private missedDeadlines = 0;
  /** Reads of answer frames so far: a call missed its deadline on a silent connection only if
   *  none came after it was sent. */
  private answerReads = 0;

  constructor(options: ChannelOptions) {
    super(options);
    this.maxMissedDeadlines = options.maxMissedDeadlines ?? 3;
  }

  /** Sends one whole frame on `connection`. */
  protected abstract send(connection: C, bytes: Buffer): void;

  /** Drops `connection` as dead (its calls fail, the next call connects again); a transport
   *  with nothing to connect again to keeps it. */
  protected reset(_connection: C): void {
    return undefined;
  }

  protected exchange(
    connection: C,
    requestId: number,
    op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
    onLateAnswer?: (frame: Frame) => void,
  ): Promise<Frame> {
    const readsAtSend = this.answerReads;
    const sentAtMs = Date.now();
    return new Promise<Frame>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.delete(requestId)) return;
        if (this.current() === connection)
          this.send(connection, encodeBrokerRpcCancel(op, requestId));
        reject(signal.reason as Error);
        if (onLateAnswer !== undefined) this.awaitLateAnswer(requestId, onLateAnswer);
        // a deadline counts only when nothing at all came for a while since the call went out:
        // a busy connection (answers arriving, calls queued for a slot until just before their
        // deadline) or a long poll answered late beside other answers is not a dead one
        if (
          isMissedDeadline(signal.reason) &&
          this.answerReads === readsAtSend &&
          Date.now() - sentAtMs >= SILENCE_BEFORE_MISS_MS
        )
          this.deadlineMissed(connection);
      };
      this.pending.set(requestId, {
        resolve: (frame) => {
          signal.removeEventListener('abort', onAbort);
          resolve(frame);
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      signal.addEventListener('abort', onAbort, { once: true });
      // what waits to be sent is bounded by maxInFlight frames, so no wait for a drain here
      this.send(connection, request);
    });
  }

  /** Hands each answer frame to its call (an answer nobody waits for is dropped). */
  protected answered(frames: readonly Frame[]): void {
    if (frames.length > 0) {
      this.missedDeadlines = 0; // the broker is there
      this.answerReads++;
    }
    for (const frame of frames) {
      if (frame.kind !== FrameKind.response && frame.kind !== FrameKind.error) continue;
      const call = this.pending.get(frame.requestId);
      if (call === undefined) continue; // cancelled with no late-answer taker: dropped
      this.pending.delete(frame.requestId);
      call.resolve(frame);
    }
  }

  /** The connection dropped: every call waiting on it is Unavailable. */
  protected dropped(): void {
    this.missedDeadlines = 0;
    this.backoff.failed();
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls)
      call.reject(unavailable('connection to broker lost', this.retryAfterMs));
  }

  /** A call on `connection` got no answer by its deadline: after `maxMissedDeadlines` in a row
   *  with nothing received, the connection is taken as dead (the peer is gone without FIN or
   *  RST, or the path is lost) and reset, so the next call reaches the broker on a new one. */
  private deadlineMissed(connection: C): void {
    if (this.current() !== connection) return;
    if (++this.missedDeadlines < this.maxMissedDeadlines) return;
    this.missedDeadlines = 0;
    this.reset(connection);
  }

  /** Keeps a cancelled call's id for a while: an answer the broker sent before it saw the
   *  cancel goes to `onLateAnswer` (the broker answers nothing once it has seen it). */
  private awaitLateAnswer(requestId: number, onLateAnswer: (frame: Frame) => void): void {
    const timer = setTimeout(() => {
      if (this.pending.get(requestId) === late) this.pending.delete(requestId);
    }, LATE_ANSWER_WAIT_MS);
    timer.unref();
    const late: PendingCall = {
      resolve: (frame) => {
        clearTimeout(timer);
        onLateAnswer(frame);
      },
      reject: () => clearTimeout(timer),
    };
    // ids wrap after 2^32 calls: a live call never meets a late entry in practice
    if (!this.pending.has(requestId)) this.pending.set(requestId, late);
  }
}
