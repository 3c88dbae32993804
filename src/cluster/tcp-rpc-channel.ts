// The client side of broker RPC over one TCP connection (node:net): frames back to back, calls
// multiplexed by request id, at most `maxInFlight` at once (more wait: back-pressure), a cancel
// frame when a call's signal aborts (a parked receive is freed at the broker). The connection is
// opened on first use and again after a drop, with exponential back-off; while the broker is
// unreachable calls fail fast with Unavailable. A call in flight when the connection drops is
// Unavailable too — a publish included, although the broker may have stored it: a cluster
// gateway fences the call at that broker (it withdraws what it stored) and retries a NORMAL or
// DELAY publish on another broker.
// The chosen transport: network-broker-client.ts says why, with the bench's figures.
import { connect, type Socket } from 'node:net';
import {
  FrameKind,
  FrameParser,
  encodeBrokerRpcCancel,
  type BrokerRpcOperation,
  type Frame,
} from '../protocol/index.js';
import { BoundedChannel, unavailable, writeGathered, type ChannelOptions } from './rpc-channel.js';

interface PendingCall {
  resolve(frame: Frame): void;
  reject(error: Error): void;
}

/** How long a cancelled call's late answer is still taken (a cancel crosses the wire in far
 *  less; past this the broker has long seen it and answers nothing). */
const LATE_ANSWER_WAIT_MS = 10_000;

export interface TcpChannelOptions extends ChannelOptions {
  host: string;
  port: number;
}

export class TcpRpcChannel extends BoundedChannel<Socket> {
  private socket: Socket | null = null;
  private readonly pending = new Map<number, PendingCall>();

  constructor(private readonly options: TcpChannelOptions) {
    super(options);
  }

  protected current(): Socket | null {
    return this.socket;
  }

  protected exchange(
    socket: Socket,
    requestId: number,
    op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
    onLateAnswer?: (frame: Frame) => void,
  ): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.delete(requestId)) return;
        if (this.socket === socket) writeGathered(socket, encodeBrokerRpcCancel(op, requestId));
        reject(signal.reason as Error);
        if (onLateAnswer !== undefined) this.awaitLateAnswer(requestId, onLateAnswer);
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
      // a full socket buffer is bounded by maxInFlight frames, so no wait for 'drain' here
      writeGathered(socket, request);
    });
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

  protected dial(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.options.host, port: this.options.port, noDelay: true });
      const timer = setTimeout(
        () => socket.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      const onError = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        this.attach(socket);
        resolve(socket);
      });
    });
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    const parser = new FrameParser();
    socket.on('data', (chunk: Buffer) => {
      const { frames, corrupt } = parser.push(chunk);
      for (const frame of frames) {
        if (frame.kind !== FrameKind.response && frame.kind !== FrameKind.error) continue;
        const call = this.pending.get(frame.requestId);
        if (call === undefined) continue; // cancelled with no late-answer taker: dropped
        this.pending.delete(frame.requestId);
        call.resolve(frame);
      }
      if (corrupt !== undefined)
        socket.destroy(new Error(`corrupt stream from broker: ${corrupt}`));
    });
    socket.on('error', () => undefined); // 'close' follows and fails the calls
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.backoff.failed();
      const calls = [...this.pending.values()];
      this.pending.clear();
      for (const call of calls) {
        call.reject(unavailable('connection to broker lost', this.retryAfterMs));
      }
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.whenIdle();
    const socket = this.socket;
    if (socket === null || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
    });
  }
}
