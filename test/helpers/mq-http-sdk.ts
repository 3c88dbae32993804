// The official Aliyun MQ HTTP SDK (@aliyunmq/mq-http-sdk, unmodified) pointed at a test node,
// plus the resources its calls name, made through /v1 as a user would, and raw requests signed
// as the SDK signs them (for what the SDK would never send).
import type { Test } from 'tap';
import mqsdk, { type MQClient, type MQError } from '@aliyunmq/mq-http-sdk';
import { MQ_VERSION, mqAuthorization, mqContentMd5 } from '../../src/gateway/mqhttp/signature.js';
import { signedFetch, type ProvisionedTenant, type TestWharf } from './wharf.js';

export const { MessageProperties } = mqsdk;

export function mqClient(wharf: Pick<TestWharf, 'url'>, tenant: ProvisionedTenant): MQClient {
  return new mqsdk.MQClient(wharf.url, tenant.accessKeyId, tenant.accessKeySecret);
}

/** PUT a topic or group of the tenant's instance through /v1 (201 expected). */
export async function putResource(
  t: Test,
  wharf: Pick<TestWharf, 'url'>,
  tenant: ProvisionedTenant,
  path: string,
  body: unknown,
): Promise<void> {
  const res = await signedFetch(wharf.url, {
    method: 'PUT',
    path: `/v1/instances/${tenant.instanceId}${path}`,
    body,
    ak: tenant.accessKeyId,
    sk: tenant.accessKeySecret,
  });
  t.equal(res.status, 201, `PUT ${path}`);
}

/** The SDK's error of a call that must fail (its `Code`), or a test failure. */
export async function mqErrorOf(call: Promise<unknown>): Promise<MQError> {
  try {
    await call;
  } catch (err) {
    return err as MQError;
  }
  throw new Error('the call succeeded');
}

export interface MqRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'DELETE' | 'PUT';
  /** From `/topics/` on, as sent and signed. */
  resource: string;
  body?: string | Buffer;
  ak: string;
  sk: string;
  /** Replace or add headers after signing (undefined: leave the header out). */
  headers?: Record<string, string | undefined>;
  /** The date to sign and send (default: now). */
  date?: Date;
  /** The content-md5 to sign and send (default: the body's; null: none, as Python sends). */
  contentMd5?: string | null;
}

export interface MqAnswer {
  status: number;
  contentType: string;
  requestId: string | null;
  body: string;
  /** `<Code>` of an Error answer. */
  code: string | undefined;
}

/** A request signed as the SDK signs it, with fetch; the answer read as text. */
export async function mqFetch(url: string, req: MqRequest): Promise<MqAnswer> {
  const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
  const headers: Record<string, string> = {
    date: (req.date ?? new Date()).toUTCString(),
    'x-mq-version': MQ_VERSION,
    'content-type': 'text/xml;charset=utf-8',
  };
  const md5 =
    req.contentMd5 === undefined && body !== undefined ? mqContentMd5(body) : req.contentMd5;
  if (typeof md5 === 'string') headers['content-md5'] = md5;
  headers.authorization = mqAuthorization(req.ak, req.sk, {
    method: req.method,
    contentMd5: headers['content-md5'] ?? '',
    contentType: headers['content-type'],
    date: headers.date,
    mqHeaders: { 'x-mq-version': MQ_VERSION },
    resource: req.resource,
  });
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  const res = await fetch(`${url}${req.resource}`, {
    method: req.method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    requestId: res.headers.get('x-mq-request-id'),
    body: text,
    code: /<Error\b[^>]*>.*?<Code>([^<]*)<\/Code>/s.exec(text)?.[1],
  };
}

/** The body the SDK sends for a publish. */
export function publishXml(body: string, tag?: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?><Message xmlns="http://mq.aliyuncs.com/doc/v1/">' +
    `<MessageBody><![CDATA[${body}]]></MessageBody>` +
    (tag === undefined ? '' : `<MessageTag><![CDATA[${tag}]]></MessageTag>`) +
    '</Message>'
  );
}
