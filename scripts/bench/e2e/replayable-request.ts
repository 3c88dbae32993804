// What the load-generating clients share below their signing schemes: one request over a
// keep-alive agent answered with its status and text, and a cache of signatures that lets a
// request whose body never changes (a consume, a publish of the same batch) be signed once and
// replayed for a few minutes, well inside the server's 15-minute date skew, so the load process
// spends its CPU on traffic, not on hashing.
import http from 'node:http';

export interface TextAnswer {
  status: number;
  text: string;
}

export interface OutgoingRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** How long a signature is replayed before the request is signed again. */
const RESIGN_AFTER_MS = 5 * 60 * 1000;

/** Sends one request to `target` through `agent` and reads the whole answer as UTF-8 text. */
export function sendRequest(
  agent: http.Agent,
  target: URL,
  request: OutgoingRequest,
): Promise<TextAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method: request.method,
        path: request.path,
        headers: request.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

/** Signed requests kept by name; `signedAtMs` says when each was signed. */
export class SignatureReplays<S extends { signedAtMs: number }> {
  private readonly replays = new Map<string, S>();

  /** A fresh signature when `name` is undefined, else the kept one while it is young enough. */
  signed(name: string | undefined, sign: () => S): S {
    if (name === undefined) return sign();
    const cached = this.replays.get(name);
    if (cached !== undefined && Date.now() - cached.signedAtMs < RESIGN_AFTER_MS) return cached;
    const signed = sign();
    this.replays.set(name, signed);
    return signed;
  }
}
