// Broker RPC frames between two threads of one process, over a MessagePort: the thread
// transport (a broker on a worker thread, its caller on another; measured by bench:cluster, run
// by no process: see network-broker-client.ts). The frames sent in one tick travel as one
// transferred buffer — one postMessage, one wake-up of the other thread — the same gathering
// the TCP transport does with cork/uncork. A message that
// is not whole frames is a corrupt stream: the port is closed, as a TCP connection would be, and
// nothing that arrives after the close is handed on (a port still delivers what was queued
// behind the message that closed it; a destroyed socket delivers nothing more).
import type { MessagePort } from 'node:worker_threads';
import { decodeFrame, type Frame } from '../protocol/index.js';

export interface FramePortHandlers {
  /** The frames of one message, in order. */
  frames(frames: Frame[]): void;
  /** The channel is gone: this side closed it, the other side did, or its thread ended. */
  closed(): void;
}

export class FramePort {
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private open = true;

  constructor(
    private readonly port: MessagePort,
    private readonly handlers: FramePortHandlers,
  ) {
    port.on('message', (data: unknown) => this.receive(data));
    port.once('close', () => this.onClose());
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Sends one whole frame with the others of this tick. */
  send(frame: Buffer): void {
    if (!this.open) return;
    if (this.gathered.length === 0) process.nextTick(() => this.flush());
    this.gathered.push(frame);
    this.gatheredBytes += frame.length;
  }

  /** Closes the channel once the frames of this tick are sent; both sides see `closed`. */
  close(): void {
    if (this.open) this.flush();
    this.destroy();
  }

  /** Closes the channel at once, dropping the frames of this tick (as a crash would). */
  destroy(): void {
    if (!this.open) return;
    this.port.close();
    this.onClose(); // drops what was gathered
  }

  private flush(): void {
    const frames = this.gathered;
    const bytes = this.gatheredBytes;
    this.gathered = [];
    this.gatheredBytes = 0;
    if (!this.open || frames.length === 0) return;
    // a fresh buffer of exactly these bytes, moved to the other thread rather than copied again
    // (a frame may sit in a pooled or larger buffer, which must not be transferred)
    const out = new Uint8Array(bytes);
    let at = 0;
    for (const frame of frames) {
      out.set(frame, at);
      at += frame.length;
    }
    this.port.postMessage(out, [out.buffer]);
  }

  private receive(data: unknown): void {
    if (!this.open) return; // queued behind the message that closed the port
    if (!(data instanceof Uint8Array)) return this.close();
    const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const frames: Frame[] = [];
    let at = 0;
    while (at < input.length) {
      const result = decodeFrame(input, at);
      if (result.status !== 'ok') {
        this.handlers.frames(frames);
        return this.close();
      }
      frames.push(result.frame);
      at += result.bytes;
    }
    this.handlers.frames(frames);
  }

  private onClose(): void {
    if (!this.open) return;
    this.open = false;
    this.gathered = [];
    this.gatheredBytes = 0;
    this.handlers.closed();
  }
}
