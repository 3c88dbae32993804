// Request ids: a client's `x-request-id` is kept when it is a sane token (so traces join up
// across services), else one is generated. Every answer carries it, errors included. Also the
// cheap guards on the request target that run before anything else: its length, path segments
// that would make the signed path differ from the routed one, and an HTTP/1.1 request's Host.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { WharfError } from '../../errors.js';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const MAX_URL_BYTES = 8 * 1024;

export function genReqId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SANE_ID.test(given) ? given : randomUUID();
}

/** Whether the path has `.`, `..` or empty segments (raw or percent-encoded). */
export function hasDotSegments(path: string): boolean {
  return (
    /(^|\/)(\.|%2e){1,2}(\/|$)/i.test(path) ||
    path.includes('//') ||
    // on the API planes a trailing slash is an empty last segment (`/v1/instances/` would name
    // instance ""); Swagger UI is served at /docs/
    (path.endsWith('/') && (path.startsWith('/v1/') || path.startsWith('/admin/')))
  );
}

/**
 * fastify's `rewriteUrl`: an Aliyun MQ SDK configured with an endpoint ending in `/` sends
 * `//topics/…` (MQHTTP.md §4), served as `/topics/…` (the signature covers the target from its
 * first `/topics/` on, the same either way). Known by its `x-mq-version` header; any other path
 * is left as it is (an empty segment is refused).
 */
export function rewriteMqEndpointSlash(req: {
  url?: string;
  headers: IncomingHttpHeaders;
}): string {
  const url = req.url ?? '/';
  return url.startsWith('//topics/') && req.headers['x-mq-version'] !== undefined
    ? url.slice(1)
    : url;
}

export function registerRequestId(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    const url = request.raw.url ?? '/';
    if (url.length > MAX_URL_BYTES) {
      done(new WharfError('UriTooLong', 'the request target is over 8 KiB'));
      return;
    }
    // HTTP/1.1 requires one (RFC 9112 §3.2); node's own check answers a bare 400, so it is off
    // (app.ts) and the refusal made here, in the error shape, with the request id
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      done(new WharfError('InvalidArgument', 'an HTTP/1.1 request needs a Host header'));
      return;
    }
    const q = url.indexOf('?');
    // SigV4 resolves `.` and `..` before signing while routing does not: refuse them, so that the
    // path a signature covers is always the path that is served.
    if (hasDotSegments(q < 0 ? url : url.slice(0, q))) {
      done(
        new WharfError('InvalidArgument', 'the path must not contain ".", ".." or empty segments'),
      );
      return;
    }
    done();
  });
}
