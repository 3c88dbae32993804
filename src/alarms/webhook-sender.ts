// One webhook POST: signed, with a deadline on the whole attempt, no redirects followed, the
// answer's body discarded (at most a few KiB read). Unless private addresses are allowed, the
// host is resolved here and every address DNS gives is checked; the connection goes to an
// address that passed (the lookup hook hands the socket that address), so a name that resolves
// differently the second time (DNS rebinding) cannot steer it elsewhere.
import { lookup as dnsLookup } from 'node:dns';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { forbiddenAddressReason, forbiddenHostReason, isAddressLiteral } from './ssrf-guard.js';
import { SIGNATURE_HEADER, signWebhook } from './webhook-signature.js';

export interface WebhookRequest {
  url: string;
  body: string;
  secret: string;
  timeoutMs: number;
  allowPrivate: boolean;
  nowMs?: number;
}

/** A failed attempt; `permanent`: retrying cannot help (a forbidden address). */
export class WebhookError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'WebhookError';
  }
}

/** A lookup that only answers addresses a webhook may reach. */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses;
    const allowed = list.filter((a) => forbiddenAddressReason(a.address) === null);
    if (allowed.length === 0) {
      const reason = list.length > 0 ? forbiddenAddressReason(list[0].address) : 'no address';
      const refused = new WebhookError(`${hostname} resolves to ${reason} addresses`, true);
      return callback(refused, '', 0);
    }
    if (options.all === true) return callback(null, allowed);
    callback(null, allowed[0].address, allowed[0].family);
  });
};

const MAX_ANSWER_BYTES = 4096;

/** Sends the POST; resolves with the 2xx status, rejects with a WebhookError otherwise. */
export function postWebhook(req: WebhookRequest): Promise<number> {
  const url = new URL(req.url);
  if (!req.allowPrivate) {
    const reason = forbiddenHostReason(url.hostname);
    if (reason !== null) {
      return Promise.reject(new WebhookError(`the webhook host is ${reason}`, true));
    }
  }
  const timestamp = Math.floor((req.nowMs ?? Date.now()) / 1000);
  const options: RequestOptions = {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(req.body),
      'user-agent': 'Wharf-Webhook/1',
      [SIGNATURE_HEADER]: signWebhook(req.secret, timestamp, req.body),
    },
    signal: AbortSignal.timeout(req.timeoutMs),
    agent: false,
    ...(req.allowPrivate || isAddressLiteral(url.hostname) ? {} : { lookup: guardedLookup }),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(url, options, (answer) => {
      const status = answer.statusCode ?? 0;
      let read = 0;
      answer.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_ANSWER_BYTES) answer.destroy();
      });
      answer.on('error', () => undefined);
      answer.on('close', () => {
        if (status >= 200 && status < 300) resolve(status);
        else reject(new WebhookError(`the receiver answered ${status}`, false, status));
      });
    });
    request.on('error', (err: Error) => {
      if (err instanceof WebhookError) return reject(err);
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof WebhookError) return reject(cause);
      const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError';
      reject(
        new WebhookError(timedOut ? `no answer within ${req.timeoutMs} ms` : err.message, false),
      );
    });
    request.end(req.body);
  });
}
