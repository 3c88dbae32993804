// The client side of broker RPC over a MessagePort (frame-port.ts) to a broker on another thread
// of this process: calls multiplexed by request id as on TCP, bounded in flight, cancelled with
// a cancel frame. There is nothing to dial: the port is the connection, given once. When it
// closes (the broker's thread ended), calls in flight and every later call are Unavailable.
import type { MessagePort } from 'node:worker_threads';
import { FramePort } from './frame-port.js';
import { MultiplexedChannel } from './multiplexed-channel.js';
import type { ChannelOptions } from './rpc-channel.js';

export class PortRpcChannel extends MultiplexedChannel<FramePort> {
  private readonly port: FramePort;

  constructor(port: MessagePort, options: ChannelOptions = {}) {
    super(options);
    this.port = new FramePort(port, {
      frames: (frames) => this.answered(frames),
      closed: () => this.dropped(),
    });
  }

  protected current(): FramePort | null {
    return this.port.isOpen ? this.port : null;
  }

  protected send(port: FramePort, bytes: Buffer): void {
    port.send(bytes);
  }

  protected dial(): Promise<FramePort> {
    return Promise.reject(new Error('the broker thread’s channel is closed'));
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.whenIdle();
    this.port.close();
  }
}
