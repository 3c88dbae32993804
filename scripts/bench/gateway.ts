// `npm run bench:gateway`: what authentication and tenancy cost per request. The server (gateway
// + broker + private Redis) runs in this process; autocannon runs in a child process. Targets,
// measured in the same run: unauthenticated GET /healthz (the yardstick: routing, hooks,
// serialization), SigV4-signed GET /v1/instances/{id}/topics (signature, credential, tenant,
// permission, instance and topic list from the gateway cache) and the same with a bearer token.
// A SigV4 request is signed once and replayed (valid for 15 minutes), so the load generator's own
// signing cost is not counted. Then a microbenchmark of one signature verification.
// `BENCH_ONLY=ids` runs only the row for message ids and receipt handles (no server): what a
// receive of 32 messages spends sealing them, and an ack opening the handles, per message.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import aws4 from 'aws4';
import { sigv4Headers as sign } from './lib/sigv4-headers.js';
import { pino } from 'pino';
import { Broker } from '../../src/broker/index.js';
import { inProcessBrokerClient } from '../../src/cluster/index.js';
import { buildApp } from '../../src/gateway/index.js';
import {
  EMPTY_SHA256,
  parseAmzDate,
  parseAuthorization,
  signingKey,
  verifySignature,
} from '../../src/gateway/sigv4.js';
import { MetaStore, deriveKey, startRedisServer } from '../../src/meta/index.js';
import { MessageIdCodec, ReceiptHandleCodec, type Receipt } from '../../src/protocol/index.js';
import { ReceiptHandleCodecHmac } from './lib/receipt-handle-hmac.js';
import { ReceiptHandleCodecV1 } from './lib/receipt-handle-v1.js';
import {
  type Column,
  formatCount,
  formatFixed,
  formatMs,
  formatRatio,
  formatTable,
} from './lib/table.js';
import { authenticateSigV4 } from '../../src/gateway/plugins/sigv4.js';
import { resolveInstance } from '../../src/gateway/plugins/tenancy.js';
import type { FastifyRequest } from 'fastify';

/**
 * Server-side authentication and tenancy of one signed request, with warm caches, as the
 * gateway runs it: SigV4 verification, credential and tenant from the cache, the permission
 * check and the instance lookup.
 */
async function tenancyMicrobench(
  meta: MetaStore,
  headers: Record<string, string>,
  path: string,
  instanceId: string,
): Promise<number> {
  const lower: Record<string, string> = { host: '127.0.0.1' };
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  const request = {
    method: 'GET',
    headers: lower,
    raw: { url: path, rawHeaders: Object.entries(lower).flatMap(([k, v]) => [k, v]) },
  } as unknown as FastifyRequest;
  const once = async () => {
    const principal = await authenticateSigV4(
      request,
      lower.authorization,
      Buffer.alloc(0),
      meta,
      'local',
    );
    await resolveInstance(meta, principal, instanceId, 'read');
  };
  for (let i = 0; i < 5_000; i++) await once();
  const n = 50_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await once();
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);

interface LoadResult {
  rps: number;
  total: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** Runs the load child against `url`; adds this (server) process's CPU µs per request. */
async function load(url: string, headers: Record<string, string>) {
  // Warm up first (JIT, lazily compiled serializers, caches) so the order of targets does not count.
  await runLoad(url, headers, warmupSeconds);
  const before = process.cpuUsage();
  const result = await runLoad(url, headers, seconds);
  const cpu = process.cpuUsage(before);
  return { ...result, serverCpuUs: (cpu.user + cpu.system) / Math.max(1, result.total) };
}

function runLoad(
  url: string,
  headers: Record<string, string>,
  durationSeconds: number,
): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(import.meta.dirname, 'gateway-load.js'),
        JSON.stringify({ url, headers, connections, durationSeconds }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as LoadResult)
        : reject(new Error(`load exited ${code}`)),
    );
  });
}

async function post(url: string, path: string, headers: Record<string, string>, body: unknown) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, string>;
}

function verifyMicrobench(): { cachedKeyUs: number; derivedKeyUs: number } {
  const path = '/v1/instances/MQ_INST_AAAAAAAAAAAAAAAAAAAA/topics';
  const signed = aws4.sign(
    { host: '127.0.0.1:8080', method: 'GET', path, service: 'mq', region: 'local' },
    { accessKeyId: 'WKAAAAAAAAAAAAAAAAAA', secretAccessKey: 'secret' },
  );
  const headers = signed.headers as Record<string, string>;
  const rawHeaders = Object.entries(headers).flatMap(([k, v]) => [k, String(v)]);
  const amzDate = headers['X-Amz-Date'];
  const run = (n: number, derive: boolean) => {
    const key = signingKey('secret', amzDate.slice(0, 8), 'local', 'mq');
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const auth = parseAuthorization(headers.Authorization);
      parseAmzDate(amzDate);
      const k = derive ? signingKey('secret', auth.date, 'local', 'mq') : key;
      if (
        !verifySignature(
          { method: 'GET', rawUrl: path, rawHeaders, amzDate, payloadHash: EMPTY_SHA256 },
          auth,
          k,
        )
      ) {
        throw new Error('verification failed');
      }
    }
    return Number(process.hrtime.bigint() - start) / n / 1000;
  };
  run(20_000, false);
  return { cachedKeyUs: run(200_000, false), derivedKeyUs: run(50_000, true) };
}

interface HandleCodec {
  encode(scope: string, receipts: readonly (Receipt & { issuedAtSec: number })[]): string[];
  decodeMany(scope: string, handles: readonly string[]): unknown[];
}

/** µs per message: id + handle encoded in batches of 32 (receive), handles decoded (ack). */
function idsMicrobench(receipts: HandleCodec, rounds: number): { sealUs: number; openUs: number } {
  const ids = new MessageIdCodec(BENCH_MAC_KEY);
  const topicScope = 'TENANTAAAAAAAAAAAAAA/MQ_INST_AAAAAAAAAAAAAAAAAAAA/orders';
  const scope = `${topicScope}/group-1@0123456789abcdef`;
  const batch = 32;
  const positions = Array.from({ length: batch }, (_, i) => ({
    brokerId: 0,
    logOffset: 1_000_000 + i * 1100,
  }));
  const batchReceipts = Array.from({ length: batch }, (_, i) => ({
    brokerId: 0,
    queueId: i % 8,
    queueOffset: 5000 + i,
    attempt: 1,
    consumerSlot: 0,
    issuedAtSec: 1_764_000_000,
  }));
  const handles = receipts.encode(scope, batchReceipts);
  const time = (fn: () => void) => {
    for (let i = 0; i < rounds / 10; i++) fn();
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) fn();
    return Number(process.hrtime.bigint() - start) / rounds / batch / 1000;
  };
  const sealUs = time(() => {
    ids.encode(topicScope, positions);
    receipts.encode(scope, batchReceipts);
  });
  const openUs = time(() => {
    if (receipts.decodeMany(scope, handles).some((r) => r === null)) throw new Error('decode');
  });
  return { sealUs, openUs };
}

const BENCH_MAC_KEY = deriveKey('bench-master-key-0123456789abcdef', 'wharf-broker-mac');

/** Old (v1: AES blocks chained) and new (v2: AES-CMAC) handles, interleaved 3 times. */
function idsTable(): string {
  const rounds = Number(process.env.BENCH_ID_ROUNDS ?? 10_000);
  const v1 = new ReceiptHandleCodecV1(BENCH_MAC_KEY);
  const v2 = new ReceiptHandleCodec(BENCH_MAC_KEY);
  const hmac = new ReceiptHandleCodecHmac(BENCH_MAC_KEY);
  const runs = { v1: [] as number[][], v2: [] as number[][], hmac: [] as number[][] };
  for (let i = 0; i < 3; i++) {
    for (const [name, codec] of [
      ['v1', v1],
      ['v2', v2],
      ['hmac', hmac],
    ] as const) {
      const r = idsMicrobench(codec, rounds);
      runs[name].push([r.sealUs, r.openUs]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const row = (name: string, r: number[][]) => [
    name,
    formatFixed(median(r.map((x) => x[0])), 2),
    formatFixed(median(r.map((x) => x[1])), 2),
  ];
  return formatTable(IDS_COLUMNS, [
    row('v1: two AES-128 blocks chained (old)', runs.v1),
    row('v2: fields + AES-CMAC (new)', runs.v2),
    row('v2 with HMAC-SHA256/96 instead (rejected design)', runs.hmac),
  ]);
}

const IDS_COLUMNS: Column[] = [
  { header: 'receipt handle format (message id v1 in both)' },
  {
    header: 'µs/message sealed on receive (id + handle, batches of 32)',
    align: 'right',
  },
  { header: 'µs/handle opened on ack', align: 'right' },
];

const LOAD_COLUMNS: Column[] = [
  { header: 'request' },
  { header: 'req/s', align: 'right' },
  { header: 'p50 ms', align: 'right' },
  { header: 'p99 ms', align: 'right' },
  { header: 'non-2xx', align: 'right' },
  { header: 'server CPU µs/req', align: 'right' },
  { header: 'req/s vs /healthz', align: 'right' },
];

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'ids') {
    process.stdout.write(`${idsTable()}\n`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-'));
  const redis = await startRedisServer({ dir });
  const masterKey = 'bench-master-key-0123456789abcdef';
  const logger = pino({ level: 'warn' });
  const broker = await Broker.open({
    dataDir: join(dir, 'broker-0'),
    brokerId: 0,
    macKey: deriveKey(masterKey, 'wharf-broker-mac'),
    logger,
  });
  const meta = await MetaStore.open({ redisUrl: redis.url, masterKey });
  const adminToken = 'bench-admin-token';
  const app = await buildApp({
    meta,
    brokers: inProcessBrokerClient(broker),
    logger,
    config: { region: 'local', adminToken, docs: false },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  try {
    const admin = { authorization: `Bearer ${adminToken}` };
    const { tenantId } = await post(url, '/admin/v1/tenants', admin, { name: 'bench' });
    const key = await post(url, `/admin/v1/tenants/${tenantId}/access-keys`, admin, {});
    const ak = key.accessKeyId;
    const sk = key.accessKeySecret;
    const body = JSON.stringify({ name: 'bench' });
    const { instanceId } = await post(
      url,
      '/v1/instances',
      sign(url, 'POST', '/v1/instances', ak, sk, body),
      {
        name: 'bench',
      },
    );
    const topicsPath = `/v1/instances/${instanceId}/topics`;
    for (let i = 0; i < 10; i++) {
      const put = JSON.stringify({ messageType: 'NORMAL' });
      await fetch(`${url}${topicsPath}/topic-${i}`, {
        method: 'PUT',
        headers: sign(url, 'PUT', `${topicsPath}/topic-${i}`, ak, sk, put),
        body: put,
      });
    }
    const tokenBody = JSON.stringify({ ttlSeconds: 3600 });
    const { token } = await post(
      url,
      '/v1/tokens',
      sign(url, 'POST', '/v1/tokens', ak, sk, tokenBody),
      {
        ttlSeconds: 3600,
      },
    );

    process.stderr.write(`bench:gateway: ${seconds} s per target, ${connections} connections…\n`);
    const health = await load(`${url}/healthz`, {});
    const signed = await load(`${url}${topicsPath}`, sign(url, 'GET', topicsPath, ak, sk));
    const bearer = await load(`${url}${topicsPath}`, { authorization: `Bearer ${token}` });
    const micro = verifyMicrobench();
    const signedHeaders = sign(url, 'GET', topicsPath, ak, sk);
    signedHeaders.host = new URL(url).host;
    const tenancyUs = await tenancyMicrobench(meta, signedHeaders, topicsPath, instanceId);
    const rows = [
      ['GET /healthz (no auth)', health],
      ['GET …/topics, SigV4', signed],
      ['GET …/topics, Bearer JWT', bearer],
    ] as const;
    const lines = [
      formatTable(
        LOAD_COLUMNS,
        rows.map(([name, r]) => [
          name,
          formatCount(r.rps),
          formatMs(r.p50),
          formatMs(r.p99),
          formatCount(r.non2xx + r.errors),
          formatFixed(r.serverCpuUs, 1),
          formatRatio(r.rps, health.rps),
        ]),
      ),
      '',
      `verify one SigV4 signature (parse header and date, canonical request, HMAC, compare): ` +
        `${micro.cachedKeyUs.toFixed(2)} µs with the cached signing key, ` +
        `${micro.derivedKeyUs.toFixed(2)} µs deriving it`,
      `SigV4 + tenancy (verify, credential and tenant from cache, permission, instance): ` +
        `${tenancyUs.toFixed(2)} µs = ${((tenancyUs / signed.serverCpuUs) * 100).toFixed(1)}% ` +
        `of a signed request's server CPU (goal < 15%)`,
      `whole signed route over /healthz (auth, tenancy, topic list, a 10-topic answer): ` +
        `${(((signed.serverCpuUs - health.serverCpuUs) / signed.serverCpuUs) * 100).toFixed(1)}%`,
      '',
      idsTable(),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await app.close();
    await broker.close();
    await meta.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
