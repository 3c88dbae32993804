// Configuration from the environment: every WHARF_* variable parsed, checked and typed in one
// place. Problems are collected and reported together, one clear line each, so a wrong
// deployment fails at start and says everything that is wrong.

/** Shortest operator token accepted (from the environment or the data dir). */
export const MIN_ADMIN_TOKEN_CHARS = 16;
/** Shortest master key accepted (from the environment or the data dir). */
export const MIN_MASTER_KEY_CHARS = 32;

export interface WharfConfig {
  port: number;
  host: string;
  dataDir: string;
  region: string;
  /** Unset: 127.0.0.1:6379 when it answers, else a private redis-server; `private`: always private. */
  redisUrl: string | undefined;
  adminToken: string | undefined;
  adminJwksUrl: string | undefined;
  adminJwtSecret: string | undefined;
  masterKey: string | undefined;
  logLevel: string;
  /** How long a gateway serves cached credentials and metadata (≤ 5000: revocation bound). */
  metaCacheMs: number;
  /** Deadline of each Redis command; past it the request answers 503. */
  redisTimeoutMs: number;
  /** Bytes of request bodies being received at once, over all connections (503 past it). */
  bodiesInFlightBytes: number;
  /** Bytes of message bodies in receive answers not yet out (past it, one message an answer). */
  answersInFlightBytes: number;
  /** Open connections from one client address (0: no limit). */
  maxConnectionsPerAddress: number;
  /** At a stop the gateway serves on this long first (connection: close, /readyz 503). */
  drainDelayMs: number;
  trustProxy: boolean;
  /** Serve Swagger UI at /docs. */
  docs: boolean;
  broker: BrokerConfig;
  cluster: ClusterConfig;
  alarms: AlarmConfig;
  /** Gateway usage counters are flushed to Redis this often. */
  usageFlushMs: number;
  /** Resource statistics for /metrics: sample interval and labelled series per tenant. */
  metricsSampleMs: number;
  metricsSeriesPerTenant: number;
  /** Stop (as on SIGTERM) once stdin reaches its end: the parent holding the pipe is gone. */
  stopOnStdinClose: boolean;
}

/** Alarm evaluation and webhook delivery. */
export interface AlarmConfig {
  /** How often every alarm is evaluated (on the node holding the lease). */
  intervalMs: number;
  /** Webhooks may reach loopback, private, link-local and metadata addresses. */
  allowPrivateWebhooks: boolean;
  /** Deadline of one webhook attempt. */
  webhookTimeoutMs: number;
  /** Attempts per notification (exponential back-off between them). */
  webhookAttempts: number;
  /** The first retry's delay (doubling after each failure). */
  webhookBackoffMs: number;
}

/** A broker process's place in a cluster (`wharf broker`); unused by the all-in-one node. */
export interface ClusterConfig {
  /** 1..65535, required by `wharf broker` (0 is the all-in-one node's). */
  brokerId: number | undefined;
  /** The broker's RPC (TCP) port; 0 picks a free one. */
  brokerPort: number;
  brokerHost: string;
  /** `host:port` other processes reach this broker at; unset: brokerHost:brokerPort. */
  brokerAdvertise: string | undefined;
}

/** The broker's store settings (see src/store/message-store-api.ts). */
export interface BrokerConfig {
  flushPolicy: 'sync' | 'async';
  asyncFlushIntervalMs: number;
  segmentBytes: number;
  retentionMs: number;
  minFreeDiskBytes: number;
  /** Record message trace events. */
  trace: boolean;
  /** Plaintext kept of the bodies sealed last, so receiving them opens nothing (0: none). */
  openedBodyCacheBytes: number;
  /** Worker threads that seal published bodies (0: on the event loop). */
  sealThreads: number;
  /** How long a half message waits for its decision before check-back offers it (every
   *  TRANSACTION topic of the broker). */
  transactionCheckDelayMs: number;
  /** Messages a tenant may hold in flight on the broker, over all its groups and topics. */
  maxInflightPerTenant: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Every variable, its default and meaning: the README's table is written from this. */
export const CONFIG_VARIABLES = [
  ['WHARF_PORT', '8080', 'HTTP port (0 picks a free one)'],
  ['WHARF_HOST', '127.0.0.1', 'address to listen on (0.0.0.0 for all)'],
  ['WHARF_DATA_DIR', './data', 'broker data, private Redis files, generated keys'],
  ['WHARF_REGION', 'local', 'SigV4 region clients sign for (service is always `mq`)'],
  [
    'WHARF_REDIS_URL',
    '(probe)',
    'redis:// URL; unset: 127.0.0.1:6379 if it answers, else a private redis-server; `private`: always private',
  ],
  [
    'WHARF_ADMIN_TOKEN',
    '(generated)',
    'operator bearer token; generated into the data dir and printed when unset',
  ],
  [
    'WHARF_ADMIN_JWKS_URL',
    '',
    'JWKS URL of operator JWTs (claims `role: admin`, `exp` ≤ 24 h ahead)',
  ],
  ['WHARF_ADMIN_JWT_SECRET', '', 'HS256 secret of operator JWTs (≥ 32 chars; `exp` ≤ 24 h ahead)'],
  [
    'WHARF_MASTER_KEY',
    '(generated)',
    'encrypts secrets at rest (≥ 32 chars); generated into the data dir when unset',
  ],
  ['WHARF_LOG_LEVEL', 'info', 'fatal, error, warn, info, debug, trace or silent'],
  ['WHARF_META_CACHE_MS', '4000', 'gateway cache of credentials and metadata, 0..5000 ms'],
  ['WHARF_REDIS_TIMEOUT_MS', '1000', 'deadline of each Redis command, 50..10000 ms (then 503)'],
  [
    'WHARF_BODIES_IN_FLIGHT_MB',
    '128',
    'request bodies being received at once, all connections together, 8..65536 MiB (then 503)',
  ],
  [
    'WHARF_ANSWERS_IN_FLIGHT_MB',
    '256',
    'message bodies in receive answers not yet out, all connections together, 16..65536 MiB (then one message an answer)',
  ],
  [
    'WHARF_DRAIN_DELAY_MS',
    '1000',
    'at a stop, serve on this long (0..20000 ms) answering connection: close and /readyz 503 first',
  ],
  [
    'WHARF_MAX_CONNECTIONS_PER_ADDRESS',
    '256',
    'open connections from one client address (0: no limit); more are answered 429',
  ],
  ['WHARF_TRUST_PROXY', 'false', 'trust x-forwarded-* from a load balancer'],
  ['WHARF_DOCS', 'true', 'serve Swagger UI at /docs'],
  [
    'WHARF_FLUSH',
    'sync',
    '`sync`: a publish is answered after fdatasync; `async`: after the write, synced every WHARF_FLUSH_INTERVAL_MS',
  ],
  ['WHARF_FLUSH_INTERVAL_MS', '200', 'fdatasync interval of the `async` flush policy, 1..10000'],
  ['WHARF_SEGMENT_MB', '1024', 'commit-log segment size in MiB, 1..4096'],
  ['WHARF_RETENTION_HOURS', '72', 'commit-log segments older than this are deleted, 1..8760'],
  [
    'WHARF_MIN_FREE_DISK_MB',
    '1024',
    'publishes are refused (503, retriable) when the data disk has less free space than this',
  ],
  [
    'WHARF_TRACE',
    'true',
    'record message trace events (delivered, acked, retried, dead-lettered, re-sent)',
  ],
  [
    'WHARF_BODY_CACHE_MB',
    '64',
    'plaintext of the bodies a broker stored last, so a receive of them skips decryption, 0..65536 MiB (0: none)',
  ],
  [
    'WHARF_SEAL_THREADS',
    '1',
    'worker threads that encrypt published bodies off the event loop, 0..16 (0: on the event loop)',
  ],
  [
    'WHARF_MAX_INFLIGHT_PER_TENANT',
    '200000',
    'messages a tenant may hold in flight on a broker, over all its groups, topics and consumer ids; past it its receives take no new messages until acks make room, 1..100000000',
  ],
  ['WHARF_BROKER_ID', '', '`wharf broker`: its id, 1..65535 (required; unique among live brokers)'],
  ['WHARF_BROKER_PORT', '7070', '`wharf broker`: port of its RPC (TCP) server for the gateways'],
  ['WHARF_BROKER_HOST', '(WHARF_HOST)', '`wharf broker`: address its RPC server listens on'],
  [
    'WHARF_BROKER_ADVERTISE',
    '<WHARF_HOST>:<WHARF_BROKER_PORT>',
    '`wharf broker`: `host:port` gateways reach it at (in Kubernetes the pod’s stable DNS name)',
  ],
  [
    'WHARF_TRANSACTION_CHECK_DELAY_MS',
    '10000',
    'check delay of every TRANSACTION topic: an undecided half message is offered by check-back this long after its publish, 100..3600000',
  ],
  ['WHARF_ALARM_INTERVAL_MS', '5000', 'how often alarms are evaluated, 100..5000 ms'],
  [
    'WHARF_WEBHOOK_ALLOW_PRIVATE',
    'false',
    'let alarm webhooks reach loopback, private, link-local and metadata addresses (refused by default: SSRF)',
  ],
  ['WHARF_WEBHOOK_TIMEOUT_MS', '5000', 'deadline of one webhook attempt, 100..60000 ms'],
  ['WHARF_WEBHOOK_ATTEMPTS', '8', 'attempts per alarm notification, 1..25'],
  [
    'WHARF_WEBHOOK_BACKOFF_MS',
    '2000',
    'delay before the first webhook retry, doubling after each failure, 10..600000 ms',
  ],
  [
    'WHARF_USAGE_FLUSH_MS',
    '10000',
    'gateway usage counters are flushed to Redis this often, 100..10000 ms (a crash loses at most this much)',
  ],
  [
    'WHARF_METRICS_SAMPLE_MS',
    '30000',
    'how often per-topic and per-group statistics are sampled for /metrics, 0 (never) to 600000 ms',
  ],
  [
    'WHARF_METRICS_SERIES_PER_TENANT',
    '200',
    'labelled topic/group series per tenant in /metrics, 1..10000; the rest are summed into `topic="_other"`',
  ],
  [
    'WHARF_STOP_ON_STDIN_CLOSE',
    'false',
    'stop as on SIGTERM once stdin (a pipe from the parent) closes: set by `npm run cluster` for its processes',
  ],
] as const;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WharfConfig {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name}=${raw}: must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name}=${raw}: must be true or false`);
    return fallback;
  };
  const secret = (name: string, minLength: number): string | undefined => {
    const value = str(name);
    if (value !== undefined && value.length < minLength) {
      problems.push(`${name}: must be at least ${minLength} characters`);
    }
    return value;
  };

  const region = str('WHARF_REGION') ?? 'local';
  if (!/^[a-z0-9-]{1,32}$/.test(region)) {
    problems.push(`WHARF_REGION=${region}: must be 1-32 of a-z, 0-9 and -`);
  }
  const redisUrl = str('WHARF_REDIS_URL');
  if (redisUrl !== undefined && redisUrl !== 'private' && !/^rediss?:\/\/[^\s]+$/.test(redisUrl)) {
    problems.push(
      'WHARF_REDIS_URL: must be redis://[user:password@]host:port[/db], rediss://…, or private',
    );
  }
  const jwksUrl = str('WHARF_ADMIN_JWKS_URL');
  if (jwksUrl !== undefined && !/^https?:\/\/\S+$/.test(jwksUrl)) {
    problems.push('WHARF_ADMIN_JWKS_URL: must be an http(s) URL');
  }
  const logLevel = str('WHARF_LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`WHARF_LOG_LEVEL=${logLevel}: must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const flush = str('WHARF_FLUSH') ?? 'sync';
  if (flush !== 'sync' && flush !== 'async')
    problems.push(`WHARF_FLUSH=${flush}: must be sync or async`);
  const MIB = 1024 * 1024;
  const config: WharfConfig = {
    port: int('WHARF_PORT', 8080, 0, 65535),
    host: str('WHARF_HOST') ?? '127.0.0.1',
    dataDir: str('WHARF_DATA_DIR') ?? './data',
    region,
    redisUrl,
    adminToken: secret('WHARF_ADMIN_TOKEN', MIN_ADMIN_TOKEN_CHARS),
    adminJwksUrl: jwksUrl,
    adminJwtSecret: secret('WHARF_ADMIN_JWT_SECRET', 32),
    masterKey: secret('WHARF_MASTER_KEY', MIN_MASTER_KEY_CHARS),
    logLevel,
    metaCacheMs: int('WHARF_META_CACHE_MS', 4000, 0, 5000),
    redisTimeoutMs: int('WHARF_REDIS_TIMEOUT_MS', 1000, 50, 10_000),
    bodiesInFlightBytes: int('WHARF_BODIES_IN_FLIGHT_MB', 128, 8, 65_536) * MIB,
    answersInFlightBytes: int('WHARF_ANSWERS_IN_FLIGHT_MB', 256, 16, 65_536) * MIB,
    maxConnectionsPerAddress: int('WHARF_MAX_CONNECTIONS_PER_ADDRESS', 256, 0, 1_000_000),
    drainDelayMs: int('WHARF_DRAIN_DELAY_MS', 1000, 0, 20_000),
    trustProxy: bool('WHARF_TRUST_PROXY', false),
    docs: bool('WHARF_DOCS', true),
    broker: {
      flushPolicy: flush === 'async' ? 'async' : 'sync',
      asyncFlushIntervalMs: int('WHARF_FLUSH_INTERVAL_MS', 200, 1, 10_000),
      segmentBytes: int('WHARF_SEGMENT_MB', 1024, 1, 4096) * MIB,
      retentionMs: int('WHARF_RETENTION_HOURS', 72, 1, 8760) * 3_600_000,
      minFreeDiskBytes: int('WHARF_MIN_FREE_DISK_MB', 1024, 0, 1_048_576) * MIB,
      trace: bool('WHARF_TRACE', true),
      openedBodyCacheBytes: int('WHARF_BODY_CACHE_MB', 64, 0, 4096) * MIB,
      sealThreads: int('WHARF_SEAL_THREADS', 1, 0, 16),
      transactionCheckDelayMs: int('WHARF_TRANSACTION_CHECK_DELAY_MS', 10_000, 100, 3_600_000),
      maxInflightPerTenant: int('WHARF_MAX_INFLIGHT_PER_TENANT', 200_000, 1, 100_000_000),
    },
    cluster: clusterConfig(str, int, str('WHARF_HOST') ?? '127.0.0.1', problems),
    alarms: {
      intervalMs: int('WHARF_ALARM_INTERVAL_MS', 5000, 100, 5000),
      allowPrivateWebhooks: bool('WHARF_WEBHOOK_ALLOW_PRIVATE', false),
      webhookTimeoutMs: int('WHARF_WEBHOOK_TIMEOUT_MS', 5000, 100, 60_000),
      webhookAttempts: int('WHARF_WEBHOOK_ATTEMPTS', 8, 1, 25),
      webhookBackoffMs: int('WHARF_WEBHOOK_BACKOFF_MS', 2000, 10, 600_000),
    },
    usageFlushMs: int('WHARF_USAGE_FLUSH_MS', 10_000, 100, 10_000),
    metricsSampleMs: int('WHARF_METRICS_SAMPLE_MS', 30_000, 0, 600_000),
    metricsSeriesPerTenant: int('WHARF_METRICS_SERIES_PER_TENANT', 200, 1, 10_000),
    stopOnStdinClose: bool('WHARF_STOP_ON_STDIN_CLOSE', false),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function clusterConfig(
  str: (name: string) => string | undefined,
  int: (name: string, fallback: number, min: number, max: number) => number,
  host: string,
  problems: string[],
): ClusterConfig {
  const rawId = str('WHARF_BROKER_ID');
  const brokerId = rawId === undefined ? undefined : int('WHARF_BROKER_ID', 1, 1, 65_535);
  const advertise = str('WHARF_BROKER_ADVERTISE');
  if (advertise !== undefined && !/^[^\s:]+:\d{1,5}$/.test(advertise)) {
    problems.push(`WHARF_BROKER_ADVERTISE=${advertise}: must be host:port`);
  }
  return {
    brokerId,
    brokerPort: int('WHARF_BROKER_PORT', 7070, 0, 65_535),
    brokerHost: str('WHARF_BROKER_HOST') ?? host,
    brokerAdvertise: advertise,
  };
}
