// Open connections per client address. Past the bound, the connection's requests are answered
// 429 `Throttled` (with retry-after, before any body is read) and the connection is closed, so
// one client cannot hold every socket, descriptor and parser of the process. The address is the
// TCP peer's: behind a load balancer that is the balancer (see README, WHARF_MAX_CONNECTIONS_PER_ADDRESS).
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';

/** An over-the-bound connection that sends no request is closed after this long. */
const REFUSED_IDLE_MS = 5_000;

export interface ConnectionLimitOptions {
  maxPerAddress: number;
  /** Called for each refused connection (metrics). */
  onRefused?: () => void;
}

export function registerConnectionLimit(app: FastifyInstance, options: ConnectionLimitOptions) {
  if (options.maxPerAddress <= 0) return;
  const open = new Map<string, number>();
  const refused = new WeakSet<Socket>();
  app.server.on('connection', (socket: Socket) => {
    const address = normalize(socket.remoteAddress);
    const count = open.get(address) ?? 0;
    if (count >= options.maxPerAddress) {
      refused.add(socket);
      options.onRefused?.();
      socket.setTimeout(REFUSED_IDLE_MS, () => socket.destroy());
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (!refused.has(request.raw.socket)) return done();
    reply.header('connection', 'close');
    done(
      new WharfError(
        'Throttled',
        `more than ${options.maxPerAddress} connections from ${normalize(request.raw.socket.remoteAddress)}`,
        { retryAfterMs: 1000 },
      ),
    );
  });
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client. */
function normalize(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * While the gateway drains, closes the connections that turn idle (their last answer went out)
 * as they appear, rather than waiting for the keep-alive timeout — including connections that
 * never sent a byte (a client's pool may open one just before the drain): node's
 * closeIdleConnections leaves those open, and server.close() would then wait for them.
 */
export function registerDrainSweep(app: FastifyInstance, intervalMs = 50): void {
  const open = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  app.addHook('preClose', (done) => {
    const sweep = (): void => {
      app.server.closeIdleConnections();
      for (const socket of open) if (socket.bytesRead === 0) socket.destroy();
    };
    sweep();
    const timer = setInterval(sweep, intervalMs);
    timer.unref();
    app.server.once('close', () => clearInterval(timer));
    done();
  });
}
