// The server side of broker RPC over TCP: exposes a BrokerClient (the real Broker) to network
// clients. Each connection is parsed into frames; a request runs with its own AbortSignal, which
// a cancel frame or the connection's close aborts (a parked receive is freed at once). A
// connection may have `maxInFlight` calls running; more are shed with Unavailable and a
// retry-after, so a broker under pressure answers instead of growing without bound.
import { createServer, type Socket } from 'node:net';
import { WharfError } from '../errors.js';
import { FrameKind, FrameParser, encodeBrokerRpcError } from '../protocol/index.js';
import type { BrokerClient } from './broker-client.js';
import { writeGathered } from './rpc-channel.js';
import { RpcServer, type BrokerServerOptions } from './rpc-server.js';

export type { BrokerServerOptions } from './rpc-server.js';

export class TcpBrokerServer extends RpcServer {
  private readonly sockets = new Set<Socket>();

  constructor(broker: BrokerClient, options: BrokerServerOptions = {}) {
    super(
      createServer({ noDelay: true }, (socket) => this.accept(socket)),
      broker,
      options,
    );
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
        if (calls.has(frame.requestId)) {
          // a second call under a running call's id would take its cancel handle and its slot
          const duplicate = new WharfError('InvalidArgument', 'request id already in flight');
          writeGathered(socket, encodeBrokerRpcError(frame.op, frame.requestId, duplicate));
          continue;
        }
        const controller = new AbortController();
        calls.set(frame.requestId, controller);
        this.run(frame, controller, (answer) => {
          calls.delete(frame.requestId);
          if (!cancelled.has(controller) && !socket.destroyed) writeGathered(socket, answer);
        });
      }
      if (corrupt !== undefined) socket.destroy();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const controller of calls.values()) controller.abort(new Error('connection closed'));
    });
  }

  protected endConnections(): void {
    for (const socket of this.sockets) socket.end();
  }

  protected cutConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
