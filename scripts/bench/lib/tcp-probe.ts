// Whether a server answers on a TCP port, so a benchmark prints "unavailable" for a peer that is
// not running instead of failing the whole run.
import { connect } from 'node:net';

/** Resolves null when a TCP connection to host:port opens within `timeoutMs`, else the reason. */
export function probeTcp(host: string, port: number, timeoutMs = 1_000): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (reason: string | null): void => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => finish(`no answer from ${host}:${port} in ${timeoutMs} ms`));
    socket.once('connect', () => finish(null));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(`${host}:${port} ${error.code ?? error.message}`),
    );
  });
}
