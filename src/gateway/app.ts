// Builds the gateway's fastify app from injected dependencies (meta store, broker client,
// config, logger); it does not listen. Order matters: error handling and route bookkeeping (405)
// first, then the per-address connection bound, body parsing and authentication hooks (onRequest
// hooks: credentials are checked from the headers before a body is read), then the OpenAPI
// generator (it records the routes added after it), then the routes. It also runs the usage meter
// (flushed to Redis every 10 s) and the stats sampler behind /metrics' per-resource figures.
// Closing the app stops accepting, wakes parked long polls (they answer at once), waits for
// in-flight requests, then stops the sampler and flushes the last usage counts.
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { BrokerClient } from '../cluster/index.js';
import { WharfError } from '../errors.js';
import type { MetaStore } from '../meta/index.js';
import { GatewayMetrics, type Logger } from '../telemetry/index.js';
import type { GatewayConfig, RouteContext } from './context.js';
import { ParkedPolls } from './parked-polls.js';
import { ReceiveStreams } from './receive-streams.js';
import { AnswerBudget } from './answer-budget.js';
import { STRICT_AJV_OPTIONS, validatorFactory } from './validators.js';
import { MAX_ANSWER_BODY_BYTES } from './long-poll-receive.js';
import { BodyBudget, registerRawBody } from './plugins/body.js';
import { registerCallAccounting } from './plugins/call-accounting.js';
import { registerConnectionLimit, registerDrainSweep } from './plugins/connections.js';
import {
  clientErrorHandler,
  frameworkErrors,
  registerErrorHandler,
} from './plugins/error-handler.js';
import { AdminAuthenticator, TokenService } from './plugins/jwt.js';
import { RateLimiter } from './plugins/quotas.js';
import { mqHttpRoutes } from './mqhttp/routes.js';
import {
  MAX_URL_BYTES,
  genReqId,
  registerRequestId,
  rewriteMqEndpointSlash,
} from './plugins/request-id.js';
import { registerAuthentication } from './plugins/tenancy.js';
import { groupRoutes } from './routes/groups.js';
import { instanceRoutes } from './routes/instances.js';
import { serviceRoutes } from './routes/service.js';
import { tenantRoutes } from './routes/tenants.js';
import { tokenRoutes } from './routes/tokens.js';
import { topicRoutes } from './routes/topics.js';
import { withTransportErrors } from './schemas/common.js';
import { registerSchemas } from './schemas/resources.js';
import { MESSAGE_COMPONENTS } from './schemas/messages.js';
import { messageRoutes } from './routes/messages.js';
import { receiveStreamRoutes } from './routes/receive-stream.js';
import { queryRoutes } from './routes/query.js';
import { AlarmEventSchema, AlarmSchema, alarmRoutes } from './routes/alarms.js';
import { UsageSchema, usageRoutes } from './routes/usage.js';
import { UsageMeter, USAGE_FLUSH_INTERVAL_MS } from './usage-meter.js';
import { MAX_SERIES_PER_TENANT, STATS_SAMPLE_INTERVAL_MS, StatsSampler } from './stats-sampler.js';
import { transactionRoutes } from './routes/transactions.js';
import { CheckedMessage } from './schemas/transactions.js';
import { openapiDocument } from './openapi.js';
import { OPERATION_IDS } from './operation-ids.js';
import './types.js';

export interface GatewayDeps {
  meta: MetaStore;
  brokers: BrokerClient;
  config: GatewayConfig;
  logger: Logger;
  metrics?: GatewayMetrics;
}

export const MAX_BODY_BYTES = 8 * 1024 * 1024;
export const MAX_HEADER_BYTES = 16 * 1024;
export const REQUEST_TIMEOUT_MS = 60_000;
export const BODIES_IN_FLIGHT_BYTES = 128 * 1024 * 1024;
export const ANSWERS_IN_FLIGHT_BYTES = 256 * 1024 * 1024;
/** Answers from this size on are dropped when the client stops reading them (answerStallMs). */
export const LARGE_ANSWER_BYTES = 64 * 1024;
export const ANSWER_STALL_MS = 30_000;
export const DRAIN_DELAY_MS = 1000;
export const MAX_CONNECTIONS_PER_ADDRESS = 256;

export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger.child({ room: 'gateway' }),
    // Access lines are logged at debug by the call accounting (plugins/call-accounting.ts), not
    // by fastify at info.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'requestId',
    }),
    genReqId,
    rewriteUrl: rewriteMqEndpointSlash,
    bodyLimit: config.bodyLimitBytes ?? MAX_BODY_BYTES,
    // A client has this long to send its whole request (slow-loris bound; a long poll's wait
    // comes after the request is in, so it does not count).
    requestTimeout: REQUEST_TIMEOUT_MS,
    // The request target's own bound (8 KiB, 414) is what limits a path parameter: an id past any
    // shorter limit is as malformed as any other, the 404 of an unknown one (names have their
    // schema's length, 400)
    routerOptions: { maxParamLength: MAX_URL_BYTES },
    // the Host check is made in request-id.ts, to answer it in the error shape
    http: { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false },
    clientErrorHandler,
    frameworkErrors,
    trustProxy: config.trustProxy ?? false,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: { customOptions: STRICT_AJV_OPTIONS },
    // query-string integers read from their digits, nothing else converted (validators.ts)
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
  }) as unknown as FastifyInstance;

  const closing = new AbortController();
  /** Aborted when the stop begins (before `closing`: the lame-duck time of drainDelayMs). */
  const draining = new AbortController();
  // every parked receive listens for the gateway closing: thousands of listeners are expected
  setMaxListeners(0, closing.signal);
  const metrics = deps.metrics ?? new GatewayMetrics();
  const ctx: RouteContext = {
    meta: deps.meta,
    brokers: deps.brokers,
    config,
    logger: deps.logger,
    metrics,
    tokens: new TokenService(deps.meta),
    admin: new AdminAuthenticator(config),
    limiter: new RateLimiter((tenant, quota) => metrics.throttled.inc({ tenant, quota })),
    usage: new UsageMeter(
      deps.meta.usage,
      deps.logger.child({ room: 'gateway', part: 'usage' }),
      config.usageFlushIntervalMs ?? USAGE_FLUSH_INTERVAL_MS,
    ),
    closing: closing.signal,
    draining: draining.signal,
    receiveStreams: new ReceiveStreams(config.maxReceiveStreamsPerTenant),
    answers: new AnswerBudget(
      config.answersInFlightBytes ?? ANSWERS_IN_FLIGHT_BYTES,
      (bytes) => metrics.answerBytesInFlight.set(bytes),
      MAX_ANSWER_BODY_BYTES,
    ),
    parkedPolls: new ParkedPolls({
      meta: deps.meta,
      metrics,
      closing: closing.signal,
      ...(config.maxParkedReceivesPerTenant === undefined
        ? {}
        : { maxPerTenant: config.maxParkedReceivesPerTenant }),
    }),
  };
  ctx.usage.start();
  const sampler = new StatsSampler({
    meta: deps.meta,
    brokers: deps.brokers,
    metrics,
    usage: ctx.usage,
    logger: deps.logger.child({ room: 'gateway', part: 'stats' }),
    intervalMs: config.statsSampleIntervalMs ?? STATS_SAMPLE_INTERVAL_MS,
    maxSeriesPerTenant: config.maxStatsSeriesPerTenant ?? MAX_SERIES_PER_TENANT,
  });
  sampler.start();
  // After the drain (onClose runs once in-flight requests are answered): the sampler stops and
  // the last usage counts go out.
  app.addHook('onClose', async () => {
    await sampler.close();
    await ctx.usage.close();
  });

  registerErrorHandler(app);
  // Every documented route gets its operationId and the error answers of the layers in front of
  // it (connection bound, shutdown, body reading: withTransportErrors).
  app.addHook('onRoute', (route) => {
    if (route.schema === undefined || route.schema.hide === true || route.method === 'HEAD') return;
    const operationId = OPERATION_IDS[`${String(route.method)} ${route.url}`];
    if (operationId === undefined)
      throw new Error(`no operationId for ${String(route.method)} ${route.url}`);
    route.schema = { ...withTransportErrors({ ...route, schema: route.schema }), operationId };
  });
  registerRequestId(app);
  registerConnectionLimit(app, {
    maxPerAddress: config.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS,
    onRefused: () => metrics.connectionsRefused.inc(),
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing.signal.aborted) return done();
    reply.header('connection', 'close');
    done(new WharfError('Unavailable', 'the gateway is shutting down'));
  });
  const answerStallMs = config.answerStallMs ?? ANSWER_STALL_MS;
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Answers finished while stopping end their connection, so the drain does not wait for
    // keep-alive sockets to time out.
    if (draining.signal.aborted) reply.header('connection', 'close');
    // The gateway holds an answer whole until the client has read it: one the client stops
    // reading (a receive of 16 MiB) is dropped with its connection once no byte went out for
    // answerStallMs (node puts the keep-alive timeout back once the answer is out). Half of it
    // is set: node lets a socket's timeout pass once while its write queue has shrunk since the
    // last look, and the kernel takes the first megabytes of any answer at once, so a client
    // that reads none of it was dropped only after twice the time set.
    if (
      (typeof payload === 'string' || Buffer.isBuffer(payload)) &&
      payload.length >= LARGE_ANSWER_BYTES
    ) {
      reply.raw.socket?.setTimeout(Math.ceil(answerStallMs / 2));
    }
    done(null, payload);
  });
  // First of the preClose hooks: the lame-duck time, served as usual but every answer ending its
  // connection, before new requests are refused and idle connections closed.
  app.addHook('preClose', async () => {
    draining.abort();
    const delayMs = config.drainDelayMs ?? DRAIN_DELAY_MS;
    if (delayMs > 0 && (await openConnections(app))) await sleep(delayMs);
  });
  app.addHook('preClose', (done) => {
    closing.abort();
    done();
  });
  registerDrainSweep(app);
  registerCallAccounting(app, { metrics, usage: ctx.usage, meta: deps.meta });
  const budget = new BodyBudget(
    config.bodiesInFlightBytes ?? BODIES_IN_FLIGHT_BYTES,
    (bytes) => metrics.bodyBytesInFlight.set(bytes),
    config.bodyLimitBytes ?? MAX_BODY_BYTES,
  );
  registerRawBody(app, config.bodyLimitBytes ?? MAX_BODY_BYTES, budget, config.bodyIdleMs);
  registerAuthentication(app, {
    meta: deps.meta,
    tokens: ctx.tokens,
    admin: ctx.admin,
    region: config.region,
  });
  registerSchemas(app, [
    ...MESSAGE_COMPONENTS,
    AlarmSchema,
    AlarmEventSchema,
    UsageSchema,
    CheckedMessage,
  ]);

  await app.register(fastifySwagger, openapiDocument());
  if (config.docs !== false) {
    await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  }
  app.get('/openapi.json', { schema: { hide: true }, config: { plane: 'public' } }, () =>
    app.swagger(),
  );

  serviceRoutes(app, ctx);
  tenantRoutes(app, ctx);
  instanceRoutes(app, ctx);
  topicRoutes(app, ctx);
  groupRoutes(app, ctx);
  tokenRoutes(app, ctx);
  messageRoutes(app, ctx);
  receiveStreamRoutes(app, ctx);
  queryRoutes(app, ctx);
  alarmRoutes(app, ctx);
  usageRoutes(app, ctx);
  transactionRoutes(app, ctx);
  mqHttpRoutes(app, ctx);
  return app;
}

/** Whether the server has connections open. */
function openConnections(app: FastifyInstance): Promise<boolean> {
  return new Promise((resolve) =>
    app.server.getConnections((error, count) => resolve(error === null && count > 0)),
  );
}
