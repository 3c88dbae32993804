// A gateway that begins to stop serves on for its lame-duck time: a request sent on a kept-alive
// connection just then is answered (and its connection ended), not reset, and /readyz says 503 so
// a load balancer takes the gateway out of rotation before its listener closes.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { startWharf } from '../helpers/wharf.js';
import { portOf } from '../helpers/raw-http.js';

/** Sends one GET on `socket` and reads its answer's head (status and headers). */
async function get(socket: Socket, path: string): Promise<{ status: number; head: string }> {
  socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
  let data = '';
  for (;;) {
    const end = data.indexOf('\r\n\r\n');
    if (end >= 0) {
      const head = data.slice(0, end).toLowerCase();
      const length = Number(/content-length: (\d+)/.exec(head)?.[1] ?? 0);
      if (data.length >= end + 4 + length) {
        return { status: Number(head.split(' ')[1]), head };
      }
    }
    const chunk = await Promise.race([
      once(socket, 'data').then(([c]) => String(c)),
      once(socket, 'close').then(() => null),
    ]);
    if (chunk === null) throw new Error(`connection closed without an answer: ${data}`);
    data += chunk;
  }
}

t.test('a stopping gateway answers requests on kept-alive connections, then closes', async (t) => {
  const wharf = await startWharf(t, { config: { drainDelayMs: 3_000 } });
  const port = portOf(wharf.url);
  const kept = connect(port, '127.0.0.1');
  t.teardown(() => kept.destroy());
  await once(kept, 'connect');
  t.equal((await get(kept, '/healthz')).status, 200, 'a keep-alive connection, idle now');

  const closed = wharf.app.close();
  // sent on the idle connection as the stop begins: answered, and the connection ended after it
  const during = await get(kept, '/healthz');
  t.equal(during.status, 200, 'answered, not reset');
  t.match(during.head, /connection: close/);
  const probe = connect(port, '127.0.0.1');
  t.teardown(() => probe.destroy());
  await once(probe, 'connect');
  t.equal((await get(probe, '/readyz')).status, 503, '/readyz takes it out of rotation');
  await closed;
  t.pass('the stop completes after the lame-duck time');
});
