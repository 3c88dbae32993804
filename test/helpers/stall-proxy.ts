// A TCP proxy that can lose the path of its connections without closing them, as a broker host
// that vanished or a partition does (no FIN, no RST: the peer just never answers). Once stalled,
// every connection open then, or opened before `heal()`, drops what it is sent, for ever;
// connections opened after `heal()` pass bytes both ways again.
import { createServer, connect, type Socket } from 'node:net';
import type { Test } from 'tap';

export interface StallProxy {
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Loses the path of every connection open now and of those opened until `heal()`. */
  stall(): void;
  /** Connections opened from now on pass bytes again. */
  heal(): void;
}

export async function startStallProxy(t: Test, targetPort: number): Promise<StallProxy> {
  const sockets = new Set<Socket>();
  const lost = new Set<Socket>();
  let stalled = false;
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const broker = connect({ port: targetPort, host: '127.0.0.1', noDelay: true });
    for (const socket of [client, broker]) {
      sockets.add(socket);
      if (stalled) lost.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        lost.delete(socket);
        client.destroy();
        broker.destroy();
      });
    }
    // a lost path drops bytes silently: nothing is forwarded, nothing is closed
    client.on('data', (chunk: Buffer) => {
      if (!lost.has(client)) broker.write(chunk);
    });
    broker.on('data', (chunk: Buffer) => {
      if (!lost.has(broker)) client.write(chunk);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const address = server.address();
  const proxy: StallProxy = {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    get connections() {
      return connections;
    },
    stall: () => {
      stalled = true;
      for (const socket of sockets) lost.add(socket);
    },
    heal: () => void (stalled = false),
  };
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return proxy;
}
