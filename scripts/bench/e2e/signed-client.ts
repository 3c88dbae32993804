// A small SigV4 HTTP client for load generation: keep-alive sockets (node:http), requests signed
// with the `aws4` package as any client would. A request whose body never changes (a publish of
// the same batch, a receive) can be signed once and replayed until its date nears the server's
// 15-minute skew limit, so the load process spends its CPU on traffic, not on hashing.
import http from 'node:http';
import aws4 from 'aws4';

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

const RESIGN_AFTER_MS = 5 * 60 * 1000;

export class SignedClient {
  private readonly agent: http.Agent;
  private readonly target: URL;
  private readonly replays = new Map<string, Signed>();

  constructor(private readonly config: SignedClientConfig) {
    this.target = new URL(config.url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: config.maxSockets });
  }

  /** Signs and sends; `replay` names a request whose signature may be reused. */
  request(method: string, path: string, body?: unknown, replay?: string): Promise<JsonAnswer> {
    const signed =
      replay === undefined
        ? this.sign(method, path, body)
        : this.replayable(replay, method, path, body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.target.hostname,
          port: this.target.port,
          method,
          path,
          headers: signed.headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({
                status: res.statusCode ?? 0,
                body: text === '' ? undefined : (JSON.parse(text) as unknown),
              });
            } catch (error) {
              reject(error instanceof Error ? error : new Error(String(error)));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(signed.body);
    });
  }

  /** The answer's body when the status is 2xx; throws with the error body otherwise. */
  async ok(method: string, path: string, body?: unknown, replay?: string): Promise<unknown> {
    const answer = await this.request(method, path, body, replay);
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  close(): void {
    this.agent.destroy();
  }

  private replayable(name: string, method: string, path: string, body: unknown): Signed {
    const cached = this.replays.get(name);
    if (cached !== undefined && Date.now() - cached.signedAtMs < RESIGN_AFTER_MS) return cached;
    const signed = this.sign(method, path, body);
    this.replays.set(name, signed);
    return signed;
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
