// The client side of broker RPC over one TCP connection (node:net): frames back to back, calls
// multiplexed by request id, at most `maxInFlight` at once (more wait: back-pressure), a cancel
// frame when a call's signal aborts (a parked receive is freed at the broker). The connection is
// opened on first use and again after a drop, with exponential back-off; while the broker is
// unreachable calls fail fast with Unavailable. A connection whose peer is gone without FIN or
// RST (a vanished host, a partition) is found two ways: TCP keepalive probes it once idle for
// `keepAliveMs`, and one that misses `maxMissedDeadlines` deadlines in a row with nothing
// received is destroyed and dialled again. A call in flight when the connection drops is
// Unavailable too — a publish included, although the broker may have stored it: a cluster
// gateway fences the call at that broker (it withdraws what it stored) and retries a NORMAL or
// DELAY publish on another broker.
// The chosen transport: network-broker-client.ts says why, with the bench's figures.
import { connect, type Socket } from 'node:net';
import { FrameParser } from '../protocol/index.js';
import { MultiplexedChannel } from './multiplexed-channel.js';
import { writeGathered, type ChannelOptions } from './rpc-channel.js';

export interface TcpChannelOptions extends ChannelOptions {
  host: string;
  port: number;
  /** Idle time before TCP keepalive probes the connection. Default 1000 ms. */
  keepAliveMs?: number;
}

export class TcpRpcChannel extends MultiplexedChannel<Socket> {
  private socket: Socket | null = null;

  constructor(private readonly options: TcpChannelOptions) {
    super(options);
  }

  protected current(): Socket | null {
    return this.socket;
  }

  protected send(socket: Socket, bytes: Buffer): void {
    writeGathered(socket, bytes);
  }

  protected dial(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({
        host: this.options.host,
        port: this.options.port,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: this.options.keepAliveMs ?? 1000,
      });
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

  protected override reset(socket: Socket): void {
    socket.destroy(new Error('no answer from the broker: connection taken as dead'));
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    const parser = new FrameParser();
    socket.on('data', (chunk: Buffer) => {
      const { frames, corrupt } = parser.push(chunk);
      this.answered(frames);
      if (corrupt !== undefined)
        socket.destroy(new Error(`corrupt stream from broker: ${corrupt}`));
    });
    socket.on('error', () => undefined); // 'close' follows and fails the calls
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.dropped();
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
