// The server side of broker RPC over HTTP/2: exposes a BrokerClient (the real Broker) to network
// clients, one call per stream. A stream reset by the caller (abort, deadline) or a session gone
// aborts the call's signal, which frees a parked receive. `maxInFlight` is advertised as the
// session's maximum concurrent streams, so HTTP/2 itself holds the excess back.
import {
  createServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { WharfError } from '../errors.js';
import { decodeFrame, encodeBrokerRpcError } from '../protocol/index.js';
import type { BrokerClient } from './broker-client.js';
import { dispatchBrokerRpc } from './broker-rpc-dispatch.js';
import { HTTP2_WINDOW_BYTES } from './http2-rpc-channel.js';
import type { BrokerServerOptions } from './tcp-broker-server.js';

export class Http2BrokerServer {
  private readonly server: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  private readonly running = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();

  constructor(
    private readonly broker: BrokerClient,
    private readonly options: BrokerServerOptions = {},
  ) {
    this.server = createServer({
      settings: {
        initialWindowSize: HTTP2_WINDOW_BYTES,
        maxConcurrentStreams: options.maxInFlight ?? 1024,
      },
    });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('error', () => undefined); // 'close' follows
      session.once('connect', () => session.setLocalWindowSize(HTTP2_WINDOW_BYTES));
      session.once('close', () => this.sessions.delete(session));
    });
    this.server.on('stream', (stream) => this.accept(stream));
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

  private accept(stream: ServerHttp2Stream): void {
    const chunks: Buffer[] = [];
    const controller = new AbortController();
    let answered = false;
    stream.on('error', () => undefined); // 'close' follows
    stream.on('close', () => {
      if (!answered) controller.abort(new Error('stream closed by the caller'));
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const decoded = decodeFrame(Buffer.concat(chunks));
      if (decoded.status !== 'ok') {
        answered = true;
        const error = new WharfError('InvalidArgument', `bad request frame: ${decoded.status}`);
        return this.answer(stream, encodeBrokerRpcError(0, 0, error));
      }
      this.controllers.add(controller);
      const run = dispatchBrokerRpc(this.broker, decoded.frame, controller.signal).then(
        (answer) => {
          answered = true;
          this.controllers.delete(controller);
          this.running.delete(run);
          this.answer(stream, answer);
        },
      );
      this.running.add(run);
    });
  }

  private answer(stream: ServerHttp2Stream, answer: Buffer): void {
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    stream.end(answer);
  }

  /** Stops accepting, frees parked receives, lets the calls running answer, then closes. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const controller of this.controllers) controller.abort(new Error('server closing'));
    await Promise.all(this.running);
    for (const session of this.sessions) session.close();
    await closed;
  }

  /** Stops at once, as a crashed broker does: connections are cut without answers. */
  async destroy(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.destroy();
    for (const controller of this.controllers) controller.abort(new Error('server destroyed'));
    await closed;
  }
}
