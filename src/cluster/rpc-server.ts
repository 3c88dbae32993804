// What both transports' broker servers do the same way: listen, run each call with its own
// AbortController (aborted by a cancel, a dropped connection or a close, which frees a parked
// receive), and stop either gracefully (calls running answer, then connections end) or at once
// (connections cut, as a crashed broker does). A transport supplies how its connections end.
import type { AddressInfo } from 'node:net';
import type { BrokerClient } from './broker-client.js';
import { dispatchBrokerRpc } from './broker-rpc-dispatch.js';
import { WharfError } from '../errors.js';
import { encodeBrokerRpcError, type Frame } from '../protocol/index.js';

export interface BrokerServerOptions {
  host?: string;
  /** 0 picks a free port; `start()` returns the one taken. */
  port?: number;
  /** Calls running per connection before more are shed. Default 1024. */
  maxInFlight?: number;
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

export abstract class RpcServer {
  private readonly running = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();
  private closing = false;

  protected constructor(
    private readonly listener: Listener,
    protected readonly broker: BrokerClient,
    protected readonly options: BrokerServerOptions,
  ) {}

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

  /** Runs one call under `controller`; `answer` gets its answer frame once it is done. */
  protected run(frame: Frame, controller: AbortController, answer: (bytes: Buffer) => void): void {
    if (this.closing) {
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

  /** Ends (gracefully) every open connection. */
  protected abstract endConnections(): void;
  /** Cuts every open connection without answers. */
  protected abstract cutConnections(): void;

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

  private stopListening(): Promise<void> {
    return new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }
}
