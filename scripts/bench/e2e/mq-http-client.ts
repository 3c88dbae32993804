// A small client of Wharf's Aliyun MQ HTTP routes for load generation: keep-alive sockets
// (node:http), XML bodies as the Node SDK builds them (values in CDATA), each request signed as
// the SDK signs it (`MQ <ak>:<sig>`, HMAC-SHA1 over method, content-md5, content-type, date,
// x-mq-* headers and resource). Like signed-client.ts, a request whose body never changes (a
// consume) is signed once and replayed (replayable-request.ts).
import http from 'node:http';
import { XMLParser } from 'fast-xml-parser';
import {
  MQ_VERSION,
  mqAuthorization,
  mqContentMd5,
} from '../../../src/gateway/mqhttp/signature.js';
import { SignatureReplays, type TextAnswer, sendRequest } from './replayable-request.js';

export interface MqHttpClientConfig {
  url: string;
  accessKeyId: string;
  accessKeySecret: string;
  instanceId: string;
  maxSockets: number;
}

export interface MqConsumed {
  receiptHandle: string;
  body: string;
}

const CONTENT_TYPE = 'text/xml;charset=utf-8';
const XMLNS = 'http://mq.aliyuncs.com/doc/v1/';

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => name === 'Message',
});

interface Signed {
  headers: Record<string, string>;
  signedAtMs: number;
}

export class MqHttpClient {
  private readonly agent: http.Agent;
  private readonly target: URL;
  private readonly replays = new SignatureReplays<Signed>();

  constructor(private readonly config: MqHttpClientConfig) {
    this.target = new URL(config.url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: config.maxSockets });
  }

  /** Publishes one message (the protocol has no batch publish). */
  async publish(topic: string, body: string): Promise<void> {
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?><Message xmlns="${XMLNS}">` +
      `<MessageBody><![CDATA[${body}]]></MessageBody></Message>`;
    const resource = `/topics/${topic}/messages?ns=${this.config.instanceId}`;
    const answer = await this.send('POST', resource, Buffer.from(xml));
    if (answer.status !== 201) throw new Error(`publish: ${answer.status} ${answer.text}`);
  }

  /** Up to `max` (1..16) messages, waiting up to `waitSeconds`; [] on MessageNotExist. */
  async consume(
    topic: string,
    group: string,
    max: number,
    waitSeconds: number,
  ): Promise<MqConsumed[]> {
    const resource =
      `/topics/${topic}/messages?consumer=${group}&ns=${this.config.instanceId}` +
      `&numOfMessages=${max}&waitseconds=${waitSeconds}`;
    const answer = await this.send('GET', resource, undefined, `consume-${group}`);
    if (answer.status === 404 && answer.text.includes('<Code>MessageNotExist</Code>')) return [];
    if (answer.status !== 200) throw new Error(`consume: ${answer.status} ${answer.text}`);
    const doc = parser.parse(answer.text) as {
      Messages?: { Message?: { ReceiptHandle: string; MessageBody: string }[] };
    };
    return (doc.Messages?.Message ?? []).map((m) => ({
      receiptHandle: m.ReceiptHandle,
      body: m.MessageBody,
    }));
  }

  async ack(topic: string, group: string, handles: readonly string[]): Promise<void> {
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?><ReceiptHandles xmlns="${XMLNS}">` +
      handles.map((h) => `<ReceiptHandle><![CDATA[${h}]]></ReceiptHandle>`).join('') +
      '</ReceiptHandles>';
    const resource = `/topics/${topic}/messages?consumer=${group}&ns=${this.config.instanceId}`;
    const answer = await this.send('DELETE', resource, Buffer.from(xml));
    if (answer.status !== 204) throw new Error(`ack: ${answer.status} ${answer.text}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private signed(method: string, resource: string, body: Buffer | undefined): Signed {
    const headers: Record<string, string> = {
      date: new Date().toUTCString(),
      'x-mq-version': MQ_VERSION,
      'content-type': CONTENT_TYPE,
      'user-agent': 'wharf-bench',
    };
    if (body !== undefined) {
      headers['content-md5'] = mqContentMd5(body);
      headers['content-length'] = String(body.length);
    }
    headers.authorization = mqAuthorization(this.config.accessKeyId, this.config.accessKeySecret, {
      method,
      contentMd5: headers['content-md5'] ?? '',
      contentType: CONTENT_TYPE,
      date: headers.date,
      mqHeaders: { 'x-mq-version': MQ_VERSION },
      resource,
    });
    return { headers, signedAtMs: Date.now() };
  }

  private send(
    method: string,
    resource: string,
    body: Buffer | undefined,
    replay?: string,
  ): Promise<TextAnswer> {
    const signed = this.replays.signed(replay, () => this.signed(method, resource, body));
    return sendRequest(this.agent, this.target, {
      method,
      path: resource,
      headers: signed.headers,
      body,
    });
  }
}
