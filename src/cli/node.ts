// Starts a Wharf node (gateway + in-process broker) from a checked config, and stops it in the
// order that loses nothing: stop accepting and drain in-flight requests (parked long polls are
// answered at once; the last usage counts are flushed), stop the alarm evaluator (giving its lease
// back) and the webhook worker (deliveries in flight finish), close the broker (flushes), close
// Redis connections, stop the private redis-server child. A second signal, or a drain over 35 s, forces the exit. At start it warns
// when the broker holds messages of instances Redis does not know (Redis lost its data).
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { AlarmEvaluator, AlarmNotifier } from '../alarms/index.js';
import type { Broker } from '../broker/index.js';
import { DirLockedError, lockDir, type DirLock } from '../store/index.js';
import { inProcessBrokerClient, leavingFailedDrops, type BrokerClient } from '../cluster/index.js';
import { buildApp } from '../gateway/index.js';
import type { BrokerLease, MetaStore } from '../meta/index.js';
import { WharfError, errorMessage } from '../errors.js';
import {
  RedisPendingDropSink,
  RedisPendingDrops,
  safeUrl,
  startRedisServer,
  type RedisServerHandle,
} from '../meta/index.js';
import {
  commitObserverFor,
  createLogger,
  GatewayMetrics,
  registerBrokerMetrics,
  type Logger,
} from '../telemetry/index.js';
import { MIN_ADMIN_TOKEN_CHARS, MIN_MASTER_KEY_CHARS, type WharfConfig } from './config.js';
import { StartupError } from './startup-error.js';
import { ALL_IN_ONE_BROKER_ID, openConfiguredBroker, openMeta } from './broker-setup.js';
import { stopSteps } from './stop-steps.js';

export const DRAIN_TIMEOUT_MS = 35_000;

export interface RunningNode {
  url: string;
  adminToken: string;
  adminTokenSource: 'env' | 'data dir';
  redisUrl: string;
  redisSource: 'configured' | 'local 6379' | 'private';
  stop(): Promise<void>;
}

export { StartupError };

/**
 * A secret kept in a file of the data dir: read, or generated once (mode 0600). A new one is
 * written under a temporary name, fdatasynced and linked into place, and the directory synced:
 * after a crash the file is whole or absent, never empty. One shorter than `minChars` (damaged,
 * or cut by hand) stops the start: the master key seals every stored body and secret, so a node
 * that went on with another would answer none of them.
 */
export function loadOrCreateSecret(path: string, minChars: number, bytes = 32): string {
  const existing = readSecret(path, minChars);
  if (existing !== null) return existing;
  const value = randomBytes(bytes).toString('base64url');
  // a name of its own (two containers sharing the dir are both pid 1), created, never truncated
  const temporary = `${path}.${randomBytes(6).toString('hex')}.new`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${value}\n`);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
  } catch (err) {
    // Another process created it first: theirs wins.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readSecret(path, minChars) ?? value;
  } finally {
    rmSync(temporary, { force: true });
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return value;
}

function readSecret(path: string, minChars: number): string | null {
  let value: string;
  try {
    value = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (value.length < minChars) {
    throw new StartupError(
      `${path} holds ${value.length} characters, fewer than ${minChars}: it is damaged (cut short ` +
        'by a crash or by hand). Restore it from a backup; delete it only if this data dir holds ' +
        'nothing sealed with it (a new one is then generated)',
    );
  }
  return value;
}

/** Whether a Redis answers PING at host:port within `timeoutMs`. */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, host);
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(data.toString().startsWith('+PONG')));
  });
}

async function resolveRedis(config: WharfConfig, logger: Logger) {
  if (config.redisUrl !== undefined && config.redisUrl !== 'private') {
    return { url: config.redisUrl, source: 'configured' as const, child: undefined };
  }
  if (config.redisUrl === undefined && (await redisAnswers('127.0.0.1', 6379))) {
    return { url: 'redis://127.0.0.1:6379', source: 'local 6379' as const, child: undefined };
  }
  const dir = join(config.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  let child: RedisServerHandle;
  try {
    child = await startRedisServer({ dir, persist: true, ownProcessGroup: true });
  } catch (err) {
    logger.debug({ err }, 'private redis-server failed');
    const why = errorMessage(err);
    if (!why.includes('ENOENT')) {
      // installed, but it would not start: say why (its own words: a damaged AOF, say)
      throw new StartupError(`the private Redis (files in ${dir}) did not start: ${why}`);
    }
    throw new StartupError(
      'Wharf needs Redis: set WHARF_REDIS_URL=redis://host:port, run Redis on 127.0.0.1:6379, ' +
        'or install redis-server (e.g. apt-get install redis-server) so Wharf starts its own.',
    );
  }
  // In a process group of its own (a terminal's Ctrl-C reaches only the node, which stops it
  // last): whatever way the node exits — a second signal, a drain over its deadline, a failed
  // start — it is told to stop too (SIGTERM: it writes its AOF and exits).
  const started = child;
  process.once('exit', () => {
    if (started.process.exitCode === null && started.process.signalCode === null) {
      started.process.kill('SIGTERM');
    }
  });
  return { url: child.url, source: 'private' as const, child };
}

/** The data dir's lock, or the one-line refusal naming the directory and the holder's pid. */
export function lockDataDir(dataDir: string): DirLock {
  try {
    return lockDir(dataDir);
  } catch (err) {
    if (err instanceof DirLockedError) throw new StartupError(err.message);
    throw err;
  }
}

export async function startNode(config: WharfConfig, logger: Logger): Promise<RunningNode> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  // First: the secrets, the private Redis's files and the broker's store are this process's alone
  // (the store takes its own lock too). The OS drops the lock when the process dies.
  const lock = lockDataDir(dataDir);
  try {
    return await startLockedNode(config, logger, dataDir, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLockedNode(
  config: WharfConfig,
  logger: Logger,
  dataDir: string,
  lock: DirLock,
): Promise<RunningNode> {
  const masterKey =
    config.masterKey ?? loadOrCreateSecret(join(dataDir, 'master.key'), MIN_MASTER_KEY_CHARS);
  const adminToken =
    config.adminToken ?? loadOrCreateSecret(join(dataDir, 'admin.token'), MIN_ADMIN_TOKEN_CHARS);
  const redis = await resolveRedis({ ...config, dataDir }, logger);
  const cleanup: (() => Promise<void>)[] = [
    () => {
      lock.release();
      return Promise.resolve();
    },
  ];
  if (redis.child !== undefined) cleanup.unshift(() => redis.child.stop());
  try {
    const meta = await openMeta(config, redis.url, masterKey, logger);
    cleanup.unshift(() => meta.close());
    const stop = stopSteps(cleanup);
    const lease = await claimAllInOneId(meta, dataDir, safeUrl(redis.url), logger, () => {
      // another all-in-one node took broker 0 on this Redis (it was away longer than the lease)
      void stop().finally(() => process.exit(1));
    });
    // given up after the broker closed (cleanup runs last-added first)
    cleanup.unshift(() => lease.release());
    const metrics = new GatewayMetrics();
    const broker = await openConfiguredBroker({
      config,
      dataDir,
      brokerId: ALL_IN_ONE_BROKER_ID,
      masterKey,
      meta,
      logger: logger.child({ room: 'broker' }),
      commitObserver: commitObserverFor(metrics),
      // a drop the broker failed (a full disk), left in Redis by the gateway below: applied as
      // soon as the broker can, and at its next start before it serves
      pendingDrops: new RedisPendingDrops(meta.redis, meta.keys, ALL_IN_ONE_BROKER_ID),
    });
    cleanup.unshift(() => broker.close());
    await warnOfUnknownInstances(broker, meta, logger);
    registerBrokerMetrics(metrics.registry, ALL_IN_ONE_BROKER_ID, () => broker.stats());
    const url = await startAlarmsAndGateway(
      config,
      {
        meta,
        brokers: leavingFailedDrops(
          inProcessBrokerClient(broker),
          ALL_IN_ONE_BROKER_ID,
          new RedisPendingDropSink(meta.redis, meta.keys),
          logger,
        ),
        redisUrl: redis.url,
        metrics,
        logger,
        adminToken,
      },
      cleanup,
    );
    return {
      url,
      adminToken,
      adminTokenSource: config.adminToken === undefined ? 'data dir' : 'env',
      redisUrl: safeUrl(redis.url),
      redisSource: redis.source,
      stop,
    };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw err;
  }
}

/**
 * Broker 0's lease in the registry, held for as long as the node runs: a second all-in-one node
 * on the same Redis would be broker 0 too, sharing its delay wheel, fences and drops with this
 * one's store, so it is refused. The lease's owner token starts with one kept in the data dir
 * (`node.owner`): the same data dir takes the id back from its own crashed run once Redis shows it
 * two renewals late (2 s); another data dir waits for a crashed holder's lease to lapse (at most
 * 5 s); either is refused while the holder renews.
 */
async function claimAllInOneId(
  meta: MetaStore,
  dataDir: string,
  redisUrl: string,
  logger: Logger,
  onLost: () => void,
): Promise<BrokerLease> {
  try {
    return await meta.claimBrokerId({
      brokerId: ALL_IN_ONE_BROKER_ID,
      address: 'all-in-one',
      // this run's token after the data dir's: a crashed earlier run of the same dir is taken back
      // from at once, a live copy of the dir (a cloned volume) is refused
      ...leaseOwner(dataDir, logger),
      registerAtClaim: false,
      waitForLapse: true,
      onLost,
    });
  } catch (err) {
    if (err instanceof WharfError && err.code === 'Conflict') {
      throw new StartupError(
        `refusing to start: another all-in-one node is live on ${redisUrl} (both would be ` +
          'broker 0 and share its delay wheel); give this one its own Redis ' +
          '(WHARF_REDIS_URL=private) or run a cluster (wharf gateway, wharf broker)',
      );
    }
    throw err;
  }
}

/** The lease owner token kept in the data dir; on a disk that refuses the first write (full,
 *  read-only) a token for this run only: the node starts, and after a crash it waits for its
 *  lease to lapse like a node on another data dir. */
function leaseOwner(dataDir: string, logger: Logger): { owner: string; takeBackFrom?: string } {
  const run = randomBytes(9).toString('base64url');
  try {
    const dir = loadOrCreateSecret(join(dataDir, 'node.owner'), 16, 12);
    return { owner: `${dir}.${run}`, takeBackFrom: `${dir}.` };
  } catch (err) {
    logger.warn(
      { err: (err as Error).message },
      'cannot write node.owner to the data dir: broker 0 is claimed for this run only',
    );
    return { owner: run };
  }
}

/** What alarms run on: the node's metadata, brokers, Redis (BullMQ), metrics and logger. */
interface AlarmDeps {
  meta: MetaStore;
  brokers: BrokerClient;
  redisUrl: string;
  metrics: GatewayMetrics;
  logger: Logger;
}

/**
 * What every node serving tenants starts last, over its `brokers`: alarms, then the gateway. Each
 * stop step goes first on `cleanup`, so the gateway drains before alarms stop. The gateway's URL.
 */
export async function startAlarmsAndGateway(
  config: WharfConfig,
  deps: AlarmDeps & { adminToken: string },
  cleanup: (() => Promise<void>)[],
): Promise<string> {
  cleanup.unshift(await startAlarms(config, deps));
  const gateway = await listenGateway(config, deps);
  cleanup.unshift(() => gateway.close());
  return gateway.url;
}

/**
 * Alarm evaluation (under a Redis lease: one node evaluates) and webhook delivery (BullMQ on the
 * node's Redis), for the all-in-one node and every gateway process. Returns the stop step: run
 * after the gateway drained, before the brokers and Redis close.
 */
async function startAlarms(config: WharfConfig, deps: AlarmDeps): Promise<() => Promise<void>> {
  const logger = deps.logger.child({ room: 'alarms' });
  const notifier = new AlarmNotifier({
    redisUrl: deps.redisUrl,
    meta: deps.meta,
    logger,
    allowPrivate: config.alarms.allowPrivateWebhooks,
    attempts: config.alarms.webhookAttempts,
    backoffMs: config.alarms.webhookBackoffMs,
    timeoutMs: config.alarms.webhookTimeoutMs,
    onDelivery: (outcome) => deps.metrics.webhookDeliveries.inc({ outcome }),
  });
  await notifier.start();
  const evaluator = new AlarmEvaluator({
    meta: deps.meta,
    brokers: deps.brokers,
    notifications: notifier,
    logger,
    intervalMs: config.alarms.intervalMs,
    onTick: (evaluated) => deps.metrics.alarmEvaluations.inc(evaluated),
  });
  evaluator.start();
  return async () => {
    await evaluator.close();
    await notifier.close();
  };
}

/** The gateway (fastify) on WHARF_PORT over `brokers`: the all-in-one node's and a gateway
 *  process's, the same app. */
async function listenGateway(
  config: WharfConfig,
  deps: {
    meta: MetaStore;
    brokers: BrokerClient;
    metrics: GatewayMetrics;
    logger: Logger;
    adminToken: string;
  },
): Promise<{ url: string; close(): Promise<void> }> {
  const app = await buildApp({
    meta: deps.meta,
    brokers: deps.brokers,
    metrics: deps.metrics,
    logger: deps.logger,
    config: {
      region: config.region,
      adminToken: deps.adminToken,
      ...(config.adminJwksUrl === undefined ? {} : { adminJwksUrl: config.adminJwksUrl }),
      ...(config.adminJwtSecret === undefined ? {} : { adminJwtSecret: config.adminJwtSecret }),
      trustProxy: config.trustProxy,
      docs: config.docs,
      bodiesInFlightBytes: config.bodiesInFlightBytes,
      answersInFlightBytes: config.answersInFlightBytes,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      drainDelayMs: config.drainDelayMs,
      allowPrivateWebhooks: config.alarms.allowPrivateWebhooks,
      usageFlushIntervalMs: config.usageFlushMs,
      statsSampleIntervalMs: config.metricsSampleMs,
      maxStatsSeriesPerTenant: config.metricsSeriesPerTenant,
    },
  });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await app.close();
    throw err;
  }
  return { url: httpUrl(config.host, app.server.address(), config.port), close: () => app.close() };
}

/** `http://host:port` of a listening server (IPv6 hosts bracketed). */
export function httpUrl(host: string, address: string | AddressInfo | null, port: number): string {
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
}

const MAX_NAMED_INSTANCES = 100;

/**
 * One warning when the broker holds messages of instances that Redis does not know: Redis came
 * back empty or from an older backup, and those messages cannot be reached until it is restored.
 */
export async function warnOfUnknownInstances(
  broker: Broker,
  meta: MetaStore,
  logger: Logger,
): Promise<void> {
  const held = broker.instancesWithMessages();
  const unknown: string[] = [];
  try {
    for (let i = 0; i < held.length; i += 100) {
      const batch = held.slice(i, i + 100);
      const found = await Promise.all(
        batch.map((h) => meta.instances.get(h.tenantId, h.instanceId)),
      );
      batch.forEach((h, j) => {
        if (found[j] === null) unknown.push(`${h.tenantId}/${h.instanceId}`);
      });
    }
  } catch (err) {
    logger.warn({ err }, 'could not check the instances held by the broker against Redis');
    return;
  }
  if (unknown.length === 0) return;
  logger.warn(
    {
      brokerId: broker.brokerId,
      count: unknown.length,
      instances: unknown.slice(0, MAX_NAMED_INSTANCES),
    },
    'broker holds messages of instances unknown to Redis (Redis restarted empty or restored ' +
      'from an older backup?): their messages are unreachable and their keys answer 403 until ' +
      'Redis is restored from a backup — see README, "Redis: persistence, backups and outages"',
  );
}

/** Stops the node on SIGTERM/SIGINT; a second signal or a stuck drain forces the exit. With
 *  `stdin` (WHARF_STOP_ON_STDIN_CLOSE) it also stops once stdin, a pipe from its parent, reaches
 *  its end: the parent's end closes when it exits however it exits (SIGKILL too), so the
 *  processes `npm run cluster` started do not outlive it. */
export function stopOnSignals(
  node: Pick<RunningNode, 'stop'>,
  logger: Logger,
  options: { stdin?: boolean } = {},
): void {
  let stopping = false;
  const stop = (cause: { signal: NodeJS.Signals } | { stdin: 'closed' }) => {
    stopping = true;
    logger.info(cause, 'draining and stopping');
    const force = setTimeout(() => {
      logger.error('drain took too long: exiting');
      process.exit(1);
    }, DRAIN_TIMEOUT_MS);
    force.unref();
    node.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stop({ signal });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (options.stdin === true) {
    // a stop already under way (the parent's SIGTERM, then its exit) goes on undisturbed
    watchStdin(() => {
      if (!stopping) stop({ stdin: 'closed' });
    }, logger);
  }
}

/** Calls `onClose` once stdin ends (or fails). Only a pipe is watched: a terminal would be read
 *  from (a background job stopped by SIGTTIN) and /dev/null ends at once. */
function watchStdin(onClose: () => void, logger: Logger): void {
  let stat;
  try {
    stat = fstatSync(0);
  } catch {
    stat = undefined; // no fd 0 at all
  }
  if (stat === undefined || !(stat.isFIFO() || stat.isSocket())) {
    logger.warn('WHARF_STOP_ON_STDIN_CLOSE: stdin is not a pipe: not watched');
    return;
  }
  let closed = false;
  const once = () => {
    if (closed) return;
    closed = true;
    onClose();
  };
  // whatever the parent writes is dropped: only the end matters
  process.stdin.on('end', once).on('error', once).resume();
}

export function createNodeLogger(config: WharfConfig): Logger {
  return createLogger({ level: config.logLevel });
}
