// `wharf broker`: one broker of a cluster. It locks its data dir, claims its id in the Redis
// registry (refused while a live broker holds it), opens its store (recovery may take long),
// serves broker RPC over TCP to the gateways, and only then registers its address: no gateway
// routes a call to it before it can answer. /healthz, /readyz and /metrics are served over HTTP
// for probes. Stops in the order that
// loses nothing: give the lease up (gateways route elsewhere at once), stop the RPC server (calls
// running answer, parked receives are freed), close the broker (flushes), close Redis, unlock.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import type { Broker } from '../broker/index.js';
import { TcpBrokerServer } from '../cluster/index.js';
import {
  RedisPendingDrops,
  RedisPublishFences,
  freePort,
  isRedisUnavailable,
  type BrokerLease,
} from '../meta/index.js';
import { WharfError } from '../errors.js';
import { registerBrokerMetrics, type Logger } from '../telemetry/index.js';
import { ConfigError, type WharfConfig } from './config.js';
import { openConfiguredBroker, openMeta } from './broker-setup.js';
import { StartupError, httpUrl, lockDataDir } from './node.js';
import { stopSteps } from './stop-steps.js';

export interface RunningBroker {
  brokerId: number;
  /** Where gateways reach its RPC server (as registered). */
  address: string;
  /** Its probe server (/healthz, /readyz, /metrics). */
  url: string;
  stop(): Promise<void>;
}

/** What a broker or gateway process needs that the all-in-one node can make up itself. */
export function requireShared(
  config: WharfConfig,
  role: string,
): { redisUrl: string; masterKey: string } {
  const problems: string[] = [];
  if (config.redisUrl === undefined || config.redisUrl === 'private') {
    problems.push(`WHARF_REDIS_URL: a ${role} process needs the shared Redis URL`);
  }
  if (config.masterKey === undefined) {
    problems.push(
      `WHARF_MASTER_KEY: a ${role} process needs the cluster's master key (every process ` +
        'shares it: MAC and data keys derive from it)',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { redisUrl: config.redisUrl ?? '', masterKey: config.masterKey ?? '' };
}

export async function startBroker(config: WharfConfig, logger: Logger): Promise<RunningBroker> {
  const { redisUrl, masterKey } = requireShared(config, 'broker');
  const brokerId = config.cluster.brokerId;
  if (brokerId === undefined) {
    throw new ConfigError(['WHARF_BROKER_ID: a broker process needs its id (1..65535)']);
  }
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir);
  const cleanup: (() => Promise<void>)[] = [
    () => {
      lock.release();
      return Promise.resolve();
    },
  ];
  try {
    const meta = await openMeta(config, redisUrl, masterKey, logger).catch((cause: unknown) => {
      throw new StartupError(`cannot reach Redis: ${(cause as Error).message}`);
    });
    cleanup.unshift(() => meta.close());
    const port = config.cluster.brokerPort === 0 ? await freePort() : config.cluster.brokerPort;
    const address = config.cluster.brokerAdvertise ?? `${config.cluster.brokerHost}:${port}`;
    const brokerLogger = logger.child({ room: 'broker', brokerId });
    const stop = stopSteps(cleanup);
    let lease: BrokerLease;
    try {
      lease = await meta.claimBrokerId({
        brokerId,
        address,
        logger: brokerLogger,
        // the id is held from now on, but gateways route here only once the server serves
        registerAtClaim: false,
        // restarted right after a crash (a supervisor, Kubernetes): the old lease lapses soon
        waitForLapse: true,
        onLost: () => {
          // another process serves this id now: two brokers must never answer for one id
          void stop().finally(() => process.exit(1));
        },
      });
    } catch (err) {
      if (err instanceof WharfError && err.code === 'Conflict') {
        throw new StartupError(`refusing to start: ${err.message}`);
      }
      if (isRedisUnavailable(err)) throw new StartupError('cannot reach Redis to claim the id');
      throw err;
    }
    const broker = await openConfiguredBroker({
      config,
      dataDir,
      brokerId,
      masterKey,
      meta,
      logger: brokerLogger,
      publishFences: new RedisPublishFences(meta.redis, meta.keys, brokerId),
      pendingDrops: new RedisPendingDrops(meta.redis, meta.keys, brokerId),
    });
    cleanup.unshift(() => broker.close());
    const server = new TcpBrokerServer(broker, { port, host: config.cluster.brokerHost });
    await server.start();
    cleanup.unshift(() => server.close());
    // the lease goes first: gateways stop routing here before the server stops answering
    cleanup.unshift(() => lease.release());
    await lease.register().catch((err: unknown) => {
      if (err instanceof WharfError && err.code === 'Conflict') {
        throw new StartupError(`refusing to serve: ${err.message}`);
      }
      if (isRedisUnavailable(err)) throw new StartupError('cannot reach Redis to register');
      throw err;
    });
    const registry = new Registry();
    registerBrokerMetrics(registry, brokerId, () => broker.stats());
    const probes = createServer((request, response) => {
      void answerProbe(request, response, broker, registry, brokerId);
    });
    probes.listen(config.port, config.host);
    await once(probes, 'listening');
    cleanup.unshift(() =>
      new Promise<void>((done) => probes.close(() => done())).then(() => undefined),
    );
    brokerLogger.info({ address, brokerId }, 'broker registered and serving');
    return {
      brokerId,
      address,
      url: httpUrl(config.host, probes.address(), config.port),
      stop,
    };
  } catch (err) {
    await stopSteps(cleanup)().catch(() => undefined);
    throw err;
  }
}

async function answerProbe(
  request: IncomingMessage,
  response: ServerResponse,
  broker: Broker,
  registry: Registry,
  brokerId: number,
): Promise<void> {
  const send = (status: number, body: string, type = 'application/json') => {
    response.writeHead(status, { 'content-type': type }).end(body);
  };
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET') return send(405, '{"code":"MethodNotAllowed"}');
  if (path === '/healthz') return send(200, JSON.stringify({ status: 'ok', brokerId }));
  if (path === '/readyz') {
    const health = await broker.health();
    return health.ready
      ? send(200, JSON.stringify({ status: 'ready', brokerId }))
      : send(503, JSON.stringify({ code: 'Unavailable', message: health.detail ?? 'not ready' }));
  }
  if (path === '/metrics') return send(200, await registry.metrics(), registry.contentType);
  return send(404, '{"code":"NotFound"}');
}
