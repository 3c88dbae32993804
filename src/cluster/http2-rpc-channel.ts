// The client side of broker RPC over HTTP/2 (node:http2): one session per broker, one stream per
// call carrying one request frame up and one answer frame down. HTTP/2 does the multiplexing
// and the flow control; a call's abort resets its stream (RST_STREAM CANCEL), which aborts the
// call at the broker. The session is opened on first use and again after a drop, with back-off;
// a call in flight when the session drops is Unavailable — a publish included, although the
// broker may have stored it: the gateway retries with the same request id, which dedup makes safe.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { decodeFrame, type BrokerRpcOperation, type Frame } from '../protocol/index.js';
import { BoundedChannel, unavailable, type ChannelOptions } from './rpc-channel.js';

export interface Http2ChannelOptions extends ChannelOptions {
  host: string;
  port: number;
}

/** Per-stream and per-session windows: the 64 KiB default would stall 32 KiB batches in flight. */
export const HTTP2_WINDOW_BYTES = 16 * 1024 * 1024;
export const BROKER_RPC_PATH = '/broker-rpc';

export class Http2RpcChannel extends BoundedChannel<ClientHttp2Session> {
  private session: ClientHttp2Session | null = null;
  private readonly streams = new Set<ClientHttp2Stream>();

  constructor(private readonly options: Http2ChannelOptions) {
    super(options);
  }

  protected current(): ClientHttp2Session | null {
    const session = this.session;
    return session !== null && !session.closed && !session.destroyed ? session : null;
  }

  protected exchange(
    session: ClientHttp2Session,
    _requestId: number,
    _op: BrokerRpcOperation,
    request: Buffer,
    signal: AbortSignal,
  ): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = session.request({
          ':method': 'POST',
          ':path': BROKER_RPC_PATH,
          'content-type': 'application/octet-stream',
        });
      } catch (error) {
        return reject(unavailable('connection to broker lost', this.retryAfterMs, error));
      }
      this.streams.add(stream);
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        this.streams.delete(stream);
        outcome();
      };
      const onAbort = (): void => {
        settle(() => reject(signal.reason as Error));
        stream.close(constants.NGHTTP2_CANCEL);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const decoded = decodeFrame(Buffer.concat(chunks));
        // a session cut mid-call ends its streams with no answer: the connection was lost
        const lost = chunks.length === 0 ? 'connection to broker lost' : 'bad answer from broker';
        settle(() =>
          decoded.status === 'ok'
            ? resolve(decoded.frame)
            : reject(unavailable(`${lost}: ${decoded.status}`, this.retryAfterMs)),
        );
      });
      stream.on('error', () => undefined); // 'close' follows
      stream.on('close', () =>
        settle(() => reject(unavailable('connection to broker lost', this.retryAfterMs))),
      );
      stream.end(request);
    });
  }

  protected dial(): Promise<ClientHttp2Session> {
    return new Promise<ClientHttp2Session>((resolve, reject) => {
      const session = connect(`http://${this.options.host}:${this.options.port}`, {
        settings: { initialWindowSize: HTTP2_WINDOW_BYTES },
      });
      const timer = setTimeout(
        () => session.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      const onError = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      session.once('error', onError);
      session.once('connect', () => {
        clearTimeout(timer);
        session.off('error', onError);
        session.on('error', () => undefined); // 'close' follows
        session.setLocalWindowSize(HTTP2_WINDOW_BYTES);
        this.session = session;
        session.once('close', () => {
          if (this.session === session) this.session = null;
          this.backoff.failed();
        });
        resolve(session);
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.whenIdle();
    const session = this.session ?? (await this.connecting?.catch(() => null));
    if (session === null || session === undefined || session.destroyed) return;
    // close() lets the open streams finish, then ends the session; 'close' is awaited rather
    // than close's callback, which never runs when the peer closed the session first
    await new Promise<void>((resolve) => {
      session.once('close', () => resolve());
      session.close();
    });
  }
}
