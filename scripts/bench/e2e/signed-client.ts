// A small SigV4 HTTP client for load generation: keep-alive sockets (node:http), requests signed
// with the `aws4` package as any client would. A request whose body never changes (a publish of
// the same batch, a receive) can be signed once and replayed (replayable-request.ts).
import http from 'node:http';
import aws4 from 'aws4';
import { SignatureReplays, sendRequest } from './replayable-request.js';

export interface SignedClientConfig {
  url: string;
  accessKeyId: string;
  accessKeySecret: string;
  region: string;
  /** Sockets at most (requests in flight beyond it queue in the agent). */
  maxSockets: number;
}

export interface JsonAnswer {
  status: number;
  body: unknown;
}

interface Signed {
  headers: Record<string, string>;
  body: Buffer;
  signedAtMs: number;
}

export class SignedClient {
  private readonly agent: http.Agent;
  private readonly target: URL;
  private readonly replays = new SignatureReplays<Signed>();

  constructor(private readonly config: SignedClientConfig) {
    this.target = new URL(config.url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: config.maxSockets });
  }

  /** Signs and sends; `replay` names a request whose signature may be reused. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    replay?: string,
  ): Promise<JsonAnswer> {
    const signed = this.replays.signed(replay, () => this.sign(method, path, body));
    const answer = await sendRequest(this.agent, this.target, {
      method,
      path,
      headers: signed.headers,
      body: signed.body,
    });
    return {
      status: answer.status,
      body: answer.text === '' ? undefined : (JSON.parse(answer.text) as unknown),
    };
  }

  /** The answer's body when the status is 2xx; throws with the error body otherwise. */
  async ok(method: string, path: string, body?: unknown, replay?: string): Promise<unknown> {
    const answer = await this.request(method, path, body, replay);
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  /** A signed request whose answer is NDJSON read as it comes: `onLine` gets each parsed line;
   *  `done` settles when the answer ends; `close` hangs up. */
  stream(
    path: string,
    body: unknown,
    onLine: (line: unknown) => void,
  ): { done: Promise<void>; close(): void } {
    const signed = this.sign('POST', path, body);
    const request = http.request({
      agent: this.agent,
      host: this.target.hostname,
      port: this.target.port,
      method: 'POST',
      path,
      headers: signed.headers,
    });
    const done = new Promise<void>((resolve, reject) => {
      request.once('error', (error) => (closed ? resolve() : reject(error)));
      request.once('response', (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`POST ${path}: ${response.statusCode}`));
          response.resume();
          return;
        }
        let rest = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          rest += chunk;
          let newline;
          while ((newline = rest.indexOf('\n')) >= 0) {
            onLine(JSON.parse(rest.slice(0, newline)) as unknown);
            rest = rest.slice(newline + 1);
          }
        });
        response.once('end', () => resolve());
        response.once('error', (error) => (closed ? resolve() : reject(error)));
      });
    });
    let closed = false;
    request.end(signed.body);
    return {
      done,
      close: () => {
        closed = true;
        request.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }

  private sign(method: string, path: string, body: unknown): Signed {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const options = aws4.sign(
      {
        host: this.target.host,
        method,
        path,
        service: 'mq',
        region: this.config.region,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: payload,
      },
      { accessKeyId: this.config.accessKeyId, secretAccessKey: this.config.accessKeySecret },
    );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {}))
      headers[name] = String(value);
    headers['content-length'] = String(payload.length);
    delete headers['Content-Length'];
    return { headers, body: payload, signedAtMs: Date.now() };
  }
}
