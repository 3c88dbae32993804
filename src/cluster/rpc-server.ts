// What every broker server does the same way: run each call with its own AbortController
// (aborted by a cancel, a dropped connection or a close, which frees a parked receive), serve a
// multiplexed frame connection (a TCP socket, a MessagePort), and stop either gracefully (calls
// running answer, then connections end) or at once (connections cut, as a crashed broker does).
// A transport supplies how its connections end; a listening one (TCP, HTTP/2) also its listener.
import type { AddressInfo } from 'node:net';
import type { BrokerClient } from './broker-client.js';
import { dispatchBrokerRpc } from './broker-rpc-dispatch.js';
import { WharfError } from '../errors.js';
import {
  FrameKind,
  brokerRpcOperationOf,
  encodeBrokerRpcError,
  type Frame,
} from '../protocol/index.js';

/** Request bytes running per connection by default (maxInFlightBytes). */
const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;

export interface BrokerServerOptions {
  host?: string;
  /** 0 picks a free port; `start()` returns the one taken. */
  port?: number;
  /** Calls running per connection before more are shed. Default 1024. */
  maxInFlight?: number;
  /** Request bytes of the calls running on a connection before more are shed (a call alone is
   *  always taken, up to the frame limit). Default 64 MiB: without it 1,024 calls of 4 MiB
   *  publishes could hold 4 GiB of one gateway's requests. */
  maxInFlightBytes?: number;
  /** The retry-after of a shed call. Default 200 ms. */
  retryAfterMs?: number;
}

/** The listener both node:net and node:http2 servers are. */
interface Listener {
  listen(port: number, host: string, callback: () => void): unknown;
  close(callback: () => void): unknown;
  address(): AddressInfo | string | null;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** One multiplexed frame connection, as the server sees it: the transport hands it every frame
 *  that arrives and tells it when the connection is gone. */
export interface FrameConnection {
  frame(frame: Frame): void;
  closed(): void;
}

export abstract class RpcServer {
  private readonly running = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();
  private closing = false;

  protected constructor(
    protected readonly broker: BrokerClient,
    protected readonly options: BrokerServerOptions,
  ) {}

  /** Runs one call under `controller`; `answer` gets its answer frame once it is done. */
  protected run(frame: Frame, controller: AbortController, answer: (bytes: Buffer) => void): void {
    // a give-back (a receive answer its gateway had stopped waiting for) is still served: shed,
    // its messages would stay hidden for their whole invisibility, an attempt counted
    if (this.closing && brokerRpcOperationOf(frame.op) !== 'returnMessages') {
      // open connections still deliver requests after the listener stopped: shed them
      const closing = new WharfError('Unavailable', 'broker closing', {
        retryAfterMs: this.options.retryAfterMs ?? 200,
      });
      return answer(encodeBrokerRpcError(frame.op, frame.requestId, closing));
    }
    this.controllers.add(controller);
    const run = dispatchBrokerRpc(this.broker, frame, controller.signal).then((bytes) => {
      this.controllers.delete(controller);
      this.running.delete(run);
      answer(bytes);
    });
    this.running.add(run);
  }

  /**
   * Serves a connection that carries frames back to back, calls multiplexed by request id:
   * `write` sends an answer, `isOpen` says whether the connection still takes one. A cancel frame
   * aborts its call (which then answers nothing: the caller forgot it); past `maxInFlight` calls
   * or `maxInFlightBytes` of requests running a request is shed with Unavailable and a
   * retry-after, so a broker under pressure answers instead of growing without bound.
   */
  protected connection(write: (bytes: Buffer) => void, isOpen: () => boolean): FrameConnection {
    const calls = new Map<number, AbortController>();
    // a call its caller cancelled gets no answer (the caller forgot it); one aborted because the
    // server closes still answers (a freed receive answers []). A cancelled transaction check
    // answers too: offers it made before it saw the cancel count against their halves' check
    // limits and cannot be taken back, so the caller takes them late (network-broker-client)
    const cancelled = new WeakSet<AbortController>();
    const maxInFlight = this.options.maxInFlight ?? 1024;
    const maxInFlightBytes = this.options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
    let bytesInFlight = 0;
    return {
      frame: (frame) => {
        if (frame.kind === FrameKind.cancel) {
          const call = calls.get(frame.requestId);
          if (call !== undefined) cancelled.add(call);
          call?.abort(new Error('cancelled by the caller'));
          return;
        }
        if (frame.kind !== FrameKind.request) return;
        const bytes = frame.payload.length;
        const over =
          calls.size >= maxInFlight
            ? 'too many calls in flight'
            : calls.size > 0 && bytesInFlight + bytes > maxInFlightBytes
              ? 'too many request bytes in flight'
              : undefined;
        if (over !== undefined) {
          const shed = new WharfError('Unavailable', `broker busy: ${over}`, {
            retryAfterMs: this.options.retryAfterMs ?? 200,
          });
          return write(encodeBrokerRpcError(frame.op, frame.requestId, shed));
        }
        if (calls.has(frame.requestId)) {
          // a second call under a running call's id would take its cancel handle and its slot
          const duplicate = new WharfError('InvalidArgument', 'request id already in flight');
          return write(encodeBrokerRpcError(frame.op, frame.requestId, duplicate));
        }
        const controller = new AbortController();
        calls.set(frame.requestId, controller);
        bytesInFlight += bytes;
        this.run(frame, controller, (answer) => {
          calls.delete(frame.requestId);
          bytesInFlight -= bytes;
          const answersCancelled = brokerRpcOperationOf(frame.op) === 'checkTransactions';
          if ((answersCancelled || !cancelled.has(controller)) && isOpen()) write(answer);
        });
      },
      closed: () => {
        for (const controller of calls.values()) controller.abort(new Error('connection closed'));
      },
    };
  }

  /** Ends (gracefully) every open connection. */
  protected abstract endConnections(): void;
  /** Cuts every open connection without answers. */
  protected abstract cutConnections(): void;
  /** Stops taking new connections (a listening transport closes its listener). */
  protected stopListening(): Promise<void> {
    return Promise.resolve();
  }

  /** Stops accepting, frees parked receives, lets the calls running answer, then closes. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = this.stopListening();
    for (const controller of this.controllers) controller.abort(new Error('server closing'));
    while (this.running.size > 0) await Promise.all(this.running);
    this.endConnections();
    await closed;
  }

  /** Stops at once, as a crashed broker does: connections are cut without answers. */
  async destroy(): Promise<void> {
    this.closing = true;
    const closed = this.stopListening();
    this.cutConnections();
    for (const controller of this.controllers) controller.abort(new Error('server destroyed'));
    await closed;
  }
}

/** A server that listens on a TCP port (the TCP and HTTP/2 transports). */
export abstract class ListeningRpcServer extends RpcServer {
  protected constructor(
    private readonly listener: Listener,
    broker: BrokerClient,
    options: BrokerServerOptions,
  ) {
    super(broker, options);
  }

  async start(): Promise<AddressInfo> {
    const listener = this.listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        listener.off('error', reject);
        resolve();
      });
    });
    return listener.address() as AddressInfo; // a TCP listener's address is an AddressInfo
  }

  protected override stopListening(): Promise<void> {
    return new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }
}
