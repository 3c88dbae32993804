// Test harness for HTTP tests of every room: a whole Wharf node on port 0 with a private
// redis-server and a broker in a temp dir, torn down by the test's teardown.
//
//   const wharf = await startWharf(t);   // { url, adminToken, redis, dir, broker, app, meta, close }
//   const tenant = await provisionTenant(wharf);       // { tenantId, accessKeyId, accessKeySecret, instanceId }
//   const res = await signedFetch(wharf.url, { method: 'PUT',
//     path: `/v1/instances/${tenant.instanceId}/topics/orders`, body: { messageType: 'NORMAL' },
//     ak: tenant.accessKeyId, sk: tenant.accessKeySecret });
//   await adminFetch(wharf, 'GET', '/admin/v1/tenants');
//
// `overrides.brokers` swaps the BrokerClient (e.g. a fake that records calls); `overrides.config`
// changes the gateway config; `overrides.cacheTtlMs` the metadata cache.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import aws4 from 'aws4';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { AlarmEvaluator, AlarmNotifier } from '../../src/alarms/index.js';
import { Broker, type BrokerOptions } from '../../src/broker/index.js';
import {
  inProcessBrokerClient,
  leavingFailedDrops,
  type BrokerClient,
} from '../../src/cluster/index.js';
import { buildApp, type GatewayConfig } from '../../src/gateway/index.js';
import {
  MetaStore,
  RedisPendingDropSink,
  RedisPendingDrops,
  RedisScheduleWheel,
  deriveKey,
  startRedisServer,
  type Permission,
  type Quotas,
  type RedisServerHandle,
} from '../../src/meta/index.js';

export interface WharfOverrides {
  config?: Partial<GatewayConfig>;
  brokers?: BrokerClient;
  cacheTtlMs?: number;
  /** Reuse this Redis (a second gateway on the same metadata) instead of starting one. */
  redisUrl?: string;
  masterKey?: string;
  /** The broker's data dir (default: in the test's temp dir) and store options. */
  brokerDir?: string;
  store?: BrokerOptions['store'];
  /** The broker's check-back delay and limits (short ones keep transaction tests fast). */
  transactions?: BrokerOptions['transactions'];
  /** Delay scheduler settings; `false`: a broker without a delay wheel. */
  scheduler?: BrokerOptions['scheduler'] | false;
  /** Run the alarm evaluator and the webhook notifier (as the node does), with these settings;
   *  webhooks to private addresses are allowed unless `allowPrivate` is false. */
  alarms?: {
    intervalMs?: number;
    attempts?: number;
    backoffMs?: number;
    timeoutMs?: number;
    allowPrivate?: boolean;
  };
}

export interface TestWharf {
  url: string;
  /** The broker's data directory. */
  brokerDir: string;
  adminToken: string;
  masterKey: string;
  redisUrl: string;
  /** The private redis-server (absent with `overrides.redisUrl`); its files are in `dir`. */
  redis: RedisServerHandle | undefined;
  dir: string;
  broker: Broker;
  brokers: BrokerClient;
  meta: MetaStore;
  app: FastifyInstance;
  /** With `overrides.alarms`. */
  evaluator: AlarmEvaluator | undefined;
  notifier: AlarmNotifier | undefined;
  close(): Promise<void>;
}

export async function startWharf(t: Test, overrides: WharfOverrides = {}): Promise<TestWharf> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-test-'));
  const redis = overrides.redisUrl === undefined ? await startRedisServer({ dir }) : undefined;
  const redisUrl = overrides.redisUrl ?? redis!.url;
  const masterKey = overrides.masterKey ?? 'test-master-key-0123456789abcdef';
  const adminToken = 'test-admin-token';
  const logger = pino({ level: process.env.WHARF_TEST_LOG ?? 'silent' });
  const meta = await MetaStore.open({
    redisUrl,
    masterKey,
    ...(overrides.cacheTtlMs === undefined ? {} : { cacheTtlMs: overrides.cacheTtlMs }),
  });
  // wired as the node does (src/cli/node.ts): bodies sealed with per-instance keys in Redis
  const brokerDir = overrides.brokerDir ?? join(dir, 'broker-0');
  const broker = await Broker.open({
    dataDir: brokerDir,
    brokerId: 0,
    macKey: deriveKey(masterKey, 'wharf-broker-mac'),
    logger,
    dataKeys: meta.dataKeys,
    pendingDrops: new RedisPendingDrops(meta.redis, meta.keys, 0),
    ...(overrides.store === undefined ? {} : { store: overrides.store }),
    ...(overrides.transactions === undefined ? {} : { transactions: overrides.transactions }),
    ...(overrides.scheduler === false
      ? {}
      : {
          scheduleWheel: new RedisScheduleWheel(meta.redis, meta.keys, '0'),
          ...(overrides.scheduler === undefined ? {} : { scheduler: overrides.scheduler }),
        }),
  });
  const brokers =
    overrides.brokers ??
    leavingFailedDrops(
      inProcessBrokerClient(broker),
      0,
      new RedisPendingDropSink(meta.redis, meta.keys),
      logger,
    );
  let notifier: AlarmNotifier | undefined;
  let evaluator: AlarmEvaluator | undefined;
  if (overrides.alarms !== undefined) {
    const a = overrides.alarms;
    notifier = new AlarmNotifier({
      redisUrl,
      meta,
      logger,
      allowPrivate: a.allowPrivate ?? true,
      ...(a.attempts === undefined ? {} : { attempts: a.attempts }),
      ...(a.backoffMs === undefined ? {} : { backoffMs: a.backoffMs }),
      ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
    });
    await notifier.start();
    evaluator = new AlarmEvaluator({
      meta,
      brokers,
      notifications: notifier,
      logger,
      intervalMs: a.intervalMs ?? 100,
    });
    evaluator.start();
  }
  const app = await buildApp({
    meta,
    brokers,
    logger,
    config: {
      region: 'local',
      adminToken,
      docs: true,
      // no lame-duck time at the end of every test (tests of the stop set it)
      drainDelayMs: 0,
      ...(overrides.alarms === undefined ? {} : { allowPrivateWebhooks: true }),
      ...overrides.config,
    },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    await evaluator?.close();
    await notifier?.close();
    await broker.close();
    await meta.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(close);
  return {
    url: `http://127.0.0.1:${port}`,
    brokerDir,
    adminToken,
    masterKey,
    redisUrl,
    redis,
    dir,
    broker,
    brokers,
    meta,
    app,
    evaluator,
    notifier,
    close,
  };
}

export interface SignedRequest {
  method?: string;
  path: string;
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown;
  ak: string;
  sk: string;
  headers?: Record<string, string>;
  region?: string;
  service?: string;
  /** Aborts the request (a client hanging up). */
  signal?: AbortSignal;
}

/** A SigV4-signed request (the `aws4` package), sent with fetch. */
export async function signedFetch(url: string, req: SignedRequest): Promise<Response> {
  const target = new URL(url);
  const body =
    req.body === undefined
      ? undefined
      : typeof req.body === 'string' || Buffer.isBuffer(req.body)
        ? req.body
        : JSON.stringify(req.body);
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...req.headers,
  };
  const signed = aws4.sign(
    {
      host: target.host,
      method: req.method ?? 'GET',
      path: req.path,
      service: req.service ?? 'mq',
      region: req.region ?? 'local',
      headers,
      ...(body === undefined ? {} : { body }),
    },
    { accessKeyId: req.ak, secretAccessKey: req.sk },
  );
  const sent = { ...(signed.headers as Record<string, string>) };
  delete sent.Host;
  delete sent.host;
  delete sent['Content-Length'];
  return fetch(`${target.origin}${req.path}`, {
    method: req.method ?? 'GET',
    headers: sent,
    ...(body === undefined ? {} : { body }),
    ...(req.signal === undefined ? {} : { signal: req.signal }),
  });
}

/** An operator-plane request with the admin token. */
export async function adminFetch(
  wharf: Pick<TestWharf, 'url' | 'adminToken'>,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${wharf.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${wharf.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export interface ProvisionedTenant {
  tenantId: string;
  accessKeyId: string;
  accessKeySecret: string;
  instanceId: string;
}

let tenantCounter = 0;

/** A tenant with an access key (default: every permission) and one instance. */
export async function provisionTenant(
  wharf: Pick<TestWharf, 'url' | 'adminToken'>,
  options: {
    name?: string;
    quotas?: Partial<Quotas>;
    /** The returned key's permissions (a function gets the new instance's id). */
    permissions?: Permission[] | ((instanceId: string) => Permission[]);
  } = {},
): Promise<ProvisionedTenant> {
  const name = options.name ?? `tenant-${process.pid}-${++tenantCounter}`;
  const tenantRes = await adminFetch(wharf, 'POST', '/admin/v1/tenants', {
    name,
    ...(options.quotas === undefined ? {} : { quotas: options.quotas }),
  });
  if (tenantRes.status !== 201) throw new Error(`create tenant: ${await tenantRes.text()}`);
  const { tenantId } = (await tenantRes.json()) as { tenantId: string };
  const keyRes = await adminFetch(wharf, 'POST', `/admin/v1/tenants/${tenantId}/access-keys`, {});
  if (keyRes.status !== 201) throw new Error(`create key: ${await keyRes.text()}`);
  const key = (await keyRes.json()) as { accessKeyId: string; accessKeySecret: string };
  const instRes = await signedFetch(wharf.url, {
    method: 'POST',
    path: '/v1/instances',
    body: { name: 'default' },
    ak: key.accessKeyId,
    sk: key.accessKeySecret,
  });
  if (instRes.status !== 201) throw new Error(`create instance: ${await instRes.text()}`);
  const { instanceId } = (await instRes.json()) as { instanceId: string };
  if (options.permissions !== undefined) {
    const narrow = await adminFetch(wharf, 'POST', `/admin/v1/tenants/${tenantId}/access-keys`, {
      permissions:
        typeof options.permissions === 'function'
          ? options.permissions(instanceId)
          : options.permissions,
    });
    const narrowKey = (await narrow.json()) as { accessKeyId: string; accessKeySecret: string };
    return { tenantId, instanceId, ...narrowKey };
  }
  return { tenantId, instanceId, ...key };
}

/** An access key's pair, as `signedFetch` takes it. */
export interface Key {
  ak: string;
  sk: string;
}

/** The tenant's provisioned access key. */
export function firstKey(tenant: ProvisionedTenant): Key {
  return { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
}

/** Signs requests to `/v1/instances/<the tenant's instance><path>` with the key given each call. */
export function instanceCaller(wharf: Pick<TestWharf, 'url'>, tenant: ProvisionedTenant) {
  const base = `/v1/instances/${tenant.instanceId}`;
  return (key: Key, method: string, path: string, body?: unknown, signal?: AbortSignal) =>
    signedFetch(wharf.url, {
      method,
      path: `${base}${path}`,
      ...(body === undefined ? {} : { body }),
      ...(signal === undefined ? {} : { signal }),
      ...key,
    });
}

/** Signs requests to `/v1/instances/<the tenant's instance><path>` with the tenant's key. */
export function tenantCaller(wharf: Pick<TestWharf, 'url'>, tenant: ProvisionedTenant) {
  const call = instanceCaller(wharf, tenant);
  const key = firstKey(tenant);
  return (method: string, path: string, body?: unknown) => call(key, method, path, body);
}

/** The JSON body of an answer, untyped (tests narrow it with t.match). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function json(res: Response): Promise<any> {
  return res.json();
}
