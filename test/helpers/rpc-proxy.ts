// A TCP proxy between gateways and one broker's RPC port, for tests of a lost answer: it passes
// bytes both ways, and once armed it lets the next publish call through to the broker, drops the
// broker's answer to it and cuts the connection — the broker has stored the messages (it answers
// only after the append is durable) and the gateway never learns it. Frames are read with the
// protocol's own parser, so the cut lands on a publish answer, not on a stats call beside it.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Test } from 'tap';
import { FrameKind, FrameParser, brokerRpcOperationOf } from '../../src/protocol/index.js';

export interface RpcProxy {
  port: number;
  /** The broker's RPC port (set once the broker is up; connections before that are refused). */
  target: number | undefined;
  /** Cut the next publish answer. */
  arm(): void;
  /** Publish answers cut so far. */
  readonly cut: number;
}

export async function startRpcProxy(t: Test): Promise<RpcProxy> {
  const sockets = new Set<Socket>();
  let armed = false;
  let cut = 0;
  const proxy: RpcProxy = {
    port: 0,
    target: undefined,
    arm: () => void (armed = true),
    get cut() {
      return cut;
    },
  };
  const server: Server = createServer((client) => {
    if (proxy.target === undefined) return client.destroy();
    const broker = connect({ port: proxy.target, host: '127.0.0.1', noDelay: true });
    sockets.add(client);
    sockets.add(broker);
    const toBroker = new FrameParser();
    const toClient = new FrameParser();
    /** Request ids of publish calls sent while armed: the answer to cut. */
    const watched = new Set<number>();
    const close = (): void => {
      client.destroy();
      broker.destroy();
    };
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      for (const frame of toBroker.push(chunk).frames) {
        if (
          armed &&
          frame.kind === FrameKind.request &&
          brokerRpcOperationOf(frame.op) === 'publish'
        ) {
          armed = false;
          watched.add(frame.requestId);
        }
      }
      broker.write(chunk);
    });
    broker.on('data', (chunk: Buffer) => {
      const answers = toClient.push(chunk).frames;
      if (answers.some((frame) => watched.has(frame.requestId))) {
        cut++;
        return close(); // the answer is dropped with the connection
      }
      client.write(chunk);
    });
    for (const socket of [client, broker]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        close();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const address = server.address();
  proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return proxy;
}
