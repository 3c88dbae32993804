// HTTP/1.1 over a raw socket, for tests that must control the bytes and their timing (a head
// without its body, a body sent late or in pieces, many held connections): one exchange per new
// socket, the first answer parsed (status, headers, a Content-Length body).
import { connect, type Socket } from 'node:net';
import aws4 from 'aws4';
import type { Test } from 'tap';
import type { ProvisionedTenant, TestWharf } from './wharf.js';

/** Long enough for any answer on a loaded machine; a request waiting for its body never gets one. */
export const RAW_ANSWER_DEADLINE_MS = 5_000;

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawExchange {
  socket: Socket;
  answer: Promise<RawAnswer>;
}

/** The port of a server's URL. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Sends `head` (and `body`, if any) on a new socket; `answer` resolves with the first answer. */
export function rawExchange(t: Test, port: number, head: string, body?: Buffer): RawExchange {
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  socket.on('error', () => undefined);
  socket.write(head);
  if (body !== undefined) socket.write(body);
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(
      () => reject(new Error(`no answer within ${RAW_ANSWER_DEADLINE_MS} ms`)),
      RAW_ANSWER_DEADLINE_MS,
    );
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (data.length < end + 4 + length) return;
      clearTimeout(timer);
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers,
        body: data.subarray(end + 4, end + 4 + length).toString('utf8'),
      });
    });
    socket.once('close', () => reject(new Error('closed without an answer')));
  });
  answer.catch(() => undefined);
  return { socket, answer };
}

/** The head of a SigV4-signed request (aws4) for `body`, as raw HTTP/1.1. */
export function signedHead(
  wharf: TestWharf,
  who: ProvisionedTenant,
  path: string,
  body: Buffer,
  extra: Record<string, string> = {},
): string {
  const signed = aws4.sign(
    {
      host: new URL(wharf.url).host,
      method: 'POST',
      path,
      service: 'mq',
      region: 'local',
      headers: { 'content-type': 'application/json', ...extra },
      body,
    },
    { accessKeyId: who.accessKeyId, secretAccessKey: who.accessKeySecret },
  );
  const headers = signed.headers as Record<string, string | number>;
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `POST ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}
