// The server side of broker RPC over HTTP/2: exposes a BrokerClient (the real Broker) to network
// clients, one call per stream. A stream reset by the caller (abort, deadline) or a session gone
// aborts the call's signal, which frees a parked receive. `maxInFlight` is advertised as the
// session's maximum concurrent streams, so HTTP/2 itself holds the excess back.
import { constants, createServer, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { WharfError } from '../errors.js';
import {
  MAX_BROKER_RPC_FRAME_BYTES,
  decodeFrame,
  encodeBrokerRpcError,
} from '../protocol/index.js';
import type { BrokerClient } from './broker-client.js';
import { HTTP2_WINDOW_BYTES } from './http2-rpc-channel.js';
import { ListeningRpcServer, type BrokerServerOptions } from './rpc-server.js';

export class Http2BrokerServer extends ListeningRpcServer {
  private readonly sessions = new Set<Http2Session>();

  constructor(broker: BrokerClient, options: BrokerServerOptions = {}) {
    const server = createServer({
      settings: {
        initialWindowSize: HTTP2_WINDOW_BYTES,
        maxConcurrentStreams: options.maxInFlight ?? 1024,
      },
    });
    super(server, broker, options);
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('error', () => undefined); // 'close' follows
      session.once('connect', () => session.setLocalWindowSize(HTTP2_WINDOW_BYTES));
      session.once('close', () => this.sessions.delete(session));
    });
    server.on('stream', (stream) => this.accept(stream));
  }

  private accept(stream: ServerHttp2Stream): void {
    const chunks: Buffer[] = [];
    const controller = new AbortController();
    let answered = false;
    stream.on('error', () => undefined); // 'close' follows
    stream.on('close', () => {
      if (!answered) controller.abort(new Error('stream closed by the caller'));
    });
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      // TCP's frame parser refuses an oversized length at the header; here the body is counted
      if (bytes > MAX_BROKER_RPC_FRAME_BYTES + 4) stream.close(constants.NGHTTP2_REFUSED_STREAM);
      else chunks.push(chunk);
    });
    stream.on('end', () => {
      if (bytes > MAX_BROKER_RPC_FRAME_BYTES + 4) return;
      const decoded = decodeFrame(Buffer.concat(chunks));
      if (decoded.status !== 'ok') {
        answered = true;
        const error = new WharfError('InvalidArgument', `bad request frame: ${decoded.status}`);
        return this.answer(stream, encodeBrokerRpcError(0, 0, error));
      }
      this.run(decoded.frame, controller, (answer) => {
        answered = true;
        this.answer(stream, answer);
      });
    });
  }

  private answer(stream: ServerHttp2Stream, answer: Buffer): void {
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    stream.end(answer);
  }

  protected endConnections(): void {
    for (const session of this.sessions) session.close();
  }

  protected cutConnections(): void {
    for (const session of this.sessions) session.destroy();
  }
}
