// Every call is counted once: in the HTTP metrics and, when it names one of the tenant's
// instances, in the tenant's usage. A call is counted when its answer has been sent, or, when the
// client hangs up first (a long poll or a stream it leaves), when its connection closes, with the
// status 499 ("client closed request", as nginx logs it): a receive the client gave up on was
// still a receive it asked for and the broker served.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { INSTANCE_ID, type MetaStore } from '../../meta/index.js';
import type { GatewayMetrics } from '../../telemetry/index.js';
import { apiClassOf, type UsageMeter } from '../usage-meter.js';

/** The status a call is counted with when the client closed it before its answer was sent. */
export const CLIENT_CLOSED = 499;

export interface CallAccountingDeps {
  metrics: GatewayMetrics;
  usage: UsageMeter;
  meta: Pick<MetaStore, 'cachedInstanceExists' | 'instance'>;
}

const counted = new WeakSet<FastifyRequest>();

export function registerCallAccounting(app: FastifyInstance, deps: CallAccountingDeps): void {
  const count = (request: FastifyRequest, reply: FastifyReply, status: number): void => {
    if (counted.has(request)) return;
    counted.add(request);
    countCall(deps, request, status, reply.elapsedTime);
  };
  app.addHook('onRequest', (request, reply, done) => {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) count(request, reply, CLIENT_CLOSED);
    });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    count(request, reply, reply.statusCode);
    done();
  });
}

function countCall(
  deps: CallAccountingDeps,
  request: FastifyRequest,
  status: number,
  elapsedMs: number,
): void {
  const route = request.routeOptions.url ?? 'unmatched';
  deps.metrics.requests.inc({ method: request.method, route, status });
  deps.metrics.duration.observe(
    { method: request.method, route, status_class: `${Math.floor(status / 100)}xx` },
    elapsedMs / 1000,
  );
  const params = request.params as Record<string, unknown> | undefined;
  const instanceId = request.usageOf?.instanceId ?? params?.instanceId;
  if (
    request.principal !== null &&
    typeof instanceId === 'string' &&
    INSTANCE_ID.test(instanceId)
  ) {
    const tenantId = request.principal.tenantId;
    const countIt = (): void => {
      deps.usage.count(tenantId, instanceId, 'requests');
      deps.usage.count(
        tenantId,
        instanceId,
        request.usageOf?.apiClass ?? apiClassOf(request.method, route),
      );
    };
    // Usage is kept for the tenant's own instances only: an answer that succeeded named one; a
    // refused one may name any id (each would be a bucket in Redis for 400 days), so it counts
    // once the instance is known as the tenant's: from the metadata cache (its handler resolved
    // it a moment ago), else looked up (and cached: the refusals that follow cost Redis nothing)
    // — a refused call counts whether or not the instance was resolved lately.
    const known =
      status < 400 || (status === CLIENT_CLOSED && request.instanceResolved)
        ? true
        : deps.meta.cachedInstanceExists(tenantId, instanceId);
    if (known === true) countIt();
    else if (known === undefined) {
      deps.meta.instance(tenantId, instanceId).then(
        (found) => {
          if (found !== null) countIt();
        },
        (err: unknown) => request.log.debug({ err }, 'a refused call not counted (Redis?)'),
      );
    }
  }
  request.log.debug(
    { method: request.method, url: request.url, status, ms: elapsedMs },
    status === CLIENT_CLOSED ? 'client closed the call' : 'answered',
  );
}
