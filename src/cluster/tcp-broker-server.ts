// The server side of broker RPC over TCP: exposes a BrokerClient (the real Broker) to network
// clients. Each connection is parsed into frames and served as a multiplexed frame connection
// (rpc-server.ts): a request runs with its own AbortSignal, which a cancel frame or the
// connection's close aborts (a parked receive is freed at once), and calls past `maxInFlight`
// are shed with Unavailable and a retry-after.
import { createServer, type Socket } from 'node:net';
import { FrameParser } from '../protocol/index.js';
import type { BrokerClient } from './broker-client.js';
import { writeGathered } from './rpc-channel.js';
import { ListeningRpcServer, type BrokerServerOptions } from './rpc-server.js';

export type { BrokerServerOptions } from './rpc-server.js';

export class TcpBrokerServer extends ListeningRpcServer {
  private readonly sockets = new Set<Socket>();

  constructor(broker: BrokerClient, options: BrokerServerOptions = {}) {
    super(
      // keepalive: a gateway gone without FIN or RST does not hold its calls and socket for ever
      createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 1000 }, (socket) =>
        this.accept(socket),
      ),
      broker,
      options,
    );
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const parser = new FrameParser();
    const connection = this.connection(
      (bytes) => writeGathered(socket, bytes),
      () => !socket.destroyed,
    );
    socket.on('data', (chunk: Buffer) => {
      const { frames, corrupt } = parser.push(chunk);
      for (const frame of frames) connection.frame(frame);
      if (corrupt !== undefined) socket.destroy();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      this.sockets.delete(socket);
      connection.closed();
    });
  }

  protected endConnections(): void {
    for (const socket of this.sockets) socket.end();
  }

  protected cutConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
