// The server side of broker RPC over TCP: exposes a BrokerClient (the real Broker) to network
// clients. Each connection is parsed into frames; a request runs with its own AbortSignal, which
// a cancel frame or the connection's close aborts (a parked receive is freed at once). A
// connection may have `maxInFlight` calls running; more are shed with Unavailable and a
// retry-after, so a broker under pressure answers instead of growing without bound.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WharfError } from '../errors.js';
import { FrameKind, FrameParser, encodeBrokerRpcError } from '../protocol/index.js';
import type { BrokerClient } from './broker-client.js';
import { dispatchBrokerRpc } from './broker-rpc-dispatch.js';
import { writeGathered } from './rpc-channel.js';

export interface BrokerServerOptions {
  host?: string;
  /** 0 picks a free port; `start()` returns the one taken. */
  port?: number;
  /** Calls running per connection before more are shed. Default 1024. */
  maxInFlight?: number;
  /** The retry-after of a shed call. Default 200 ms. */
  retryAfterMs?: number;
}

export class TcpBrokerServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly running = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();

  constructor(
    private readonly broker: BrokerClient,
    private readonly options: BrokerServerOptions = {},
  ) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo; // a TCP listener's address is an AddressInfo
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const parser = new FrameParser();
    const calls = new Map<number, AbortController>();
    // a call its caller cancelled gets no answer (the caller forgot it); one aborted because the
    // server closes still answers (a freed receive answers [])
    const cancelled = new WeakSet<AbortController>();
    const maxInFlight = this.options.maxInFlight ?? 1024;
    socket.on('data', (chunk: Buffer) => {
      const { frames, corrupt } = parser.push(chunk);
      for (const frame of frames) {
        if (frame.kind === FrameKind.cancel) {
          const call = calls.get(frame.requestId);
          if (call !== undefined) cancelled.add(call);
          call?.abort(new Error('cancelled by the caller'));
          continue;
        }
        if (frame.kind !== FrameKind.request) continue;
        if (calls.size >= maxInFlight) {
          const shed = new WharfError('Unavailable', 'broker busy: too many calls in flight', {
            retryAfterMs: this.options.retryAfterMs ?? 200,
          });
          writeGathered(socket, encodeBrokerRpcError(frame.op, frame.requestId, shed));
          continue;
        }
        const controller = new AbortController();
        calls.set(frame.requestId, controller);
        this.controllers.add(controller);
        const run = dispatchBrokerRpc(this.broker, frame, controller.signal).then((answer) => {
          calls.delete(frame.requestId);
          this.controllers.delete(controller);
          this.running.delete(run);
          if (!cancelled.has(controller) && !socket.destroyed) writeGathered(socket, answer);
        });
        this.running.add(run);
      }
      if (corrupt !== undefined) socket.destroy();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const controller of calls.values()) controller.abort(new Error('connection closed'));
    });
  }

  /** Stops accepting, frees parked receives, lets the calls running answer, then closes. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const controller of this.controllers) controller.abort(new Error('server closing'));
    await Promise.all(this.running);
    for (const socket of this.sockets) socket.end();
    await closed;
  }

  /** Stops at once, as a crashed broker does: connections are cut without answers. */
  async destroy(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    for (const controller of this.controllers) controller.abort(new Error('server destroyed'));
    await closed;
  }
}
