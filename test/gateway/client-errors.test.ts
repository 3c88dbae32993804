// What the gateway does with a connection whose request the HTTP parser refused (fastify's
// clientErrorHandler): it answers, then closes the socket whole a moment later, whatever the
// client does. A slow loris timed out that neither reads nor closes must not keep the descriptor.
import t, { type Test } from 'tap';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { clientErrorHandler } from '../../src/gateway/plugins/error-handler.js';
import { waitFor } from '../helpers/wait-for.js';

/** A server whose every connection gets `err` refused at once, as node's parser would, and the
 *  server side of the last one. */
async function refusingServer(err: Error & { code: string }) {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.once('data', () => clientErrorHandler(err, socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { port, sockets };
}

/** A client that keeps its half open after the server's FIN and never closes; `answer()` is
 *  what it has read. */
function stayingClient(t: Test, port: number) {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => socket.destroy());
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  return Object.assign(socket, { answer: () => answer });
}

t.test(
  'a request timed out is answered, then its socket closed though the client stays',
  async (t) => {
    const timedOut = Object.assign(new Error('request timeout'), {
      code: 'ERR_HTTP_REQUEST_TIMEOUT',
    });
    const { port, sockets } = await refusingServer(timedOut);
    const client = stayingClient(t, port);
    client.write('GET /v1/instances HTTP/1.1\r\nHost: x\r\nX-Slow: a');
    await waitFor('the server side of the connection', () => sockets[0]);
    await waitFor('the server side closed', () => sockets[0].destroyed, { timeoutMs: 10_000 });
    t.match(client.answer(), /^HTTP\/1\.1 400 /, 'answered 400');
    t.match(client.answer(), /"code":"InvalidArgument"/);
    t.match(client.answer(), /did not come in whole in time/, 'saying why');
    t.notOk(client.destroyed, 'while the client kept its connection');
  },
);

t.test('bytes the client goes on sending after the refusal are read and dropped', async (t) => {
  const malformed = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' });
  const { port, sockets } = await refusingServer(malformed);
  const client = stayingClient(t, port);
  client.write('BREW / HTTP/1.1\r\n');
  await waitFor('the answer', () => client.answer().includes('malformed HTTP request'));
  client.write(Buffer.alloc(256 * 1024, 'x')); // more than the socket buffers hold unread
  await waitFor('the server side closed', () => sockets[0]?.destroyed, { timeoutMs: 10_000 });
  t.match(client.answer(), /^HTTP\/1\.1 400 /);
});
