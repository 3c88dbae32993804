// The server side of broker RPC over a MessagePort (frame-port.ts): exposes a BrokerClient (the
// real Broker, on this thread) to a gateway on another thread of the process. One connection —
// the port — served like a TCP connection (rpc-server.ts): calls run with their own AbortSignal,
// a cancel frame or the port's close aborts them, calls past `maxInFlight` are shed.
import type { MessagePort } from 'node:worker_threads';
import type { BrokerClient } from './broker-client.js';
import { FramePort } from './frame-port.js';
import { RpcServer, type BrokerServerOptions } from './rpc-server.js';

export class PortBrokerServer extends RpcServer {
  private readonly port: FramePort;

  constructor(broker: BrokerClient, port: MessagePort, options: BrokerServerOptions = {}) {
    super(broker, options);
    const connection = this.connection(
      (bytes) => this.port.send(bytes),
      () => this.port.isOpen,
    );
    this.port = new FramePort(port, {
      frames: (frames) => {
        for (const frame of frames) connection.frame(frame);
      },
      closed: () => connection.closed(),
    });
  }

  protected endConnections(): void {
    this.port.close();
  }

  protected cutConnections(): void {
    this.port.destroy();
  }
}
