// bench:delay end to end: a whole node in this process (gateway, broker with its Redis wheel,
// private redis-server), load from a child process. Rows: scheduling throughput over signed
// HTTP, Redis bytes per pending message, lateness at a steady due rate, a same-second storm
// with ordinary publishes flowing beside it, and the rebuild of a lost wheel.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sigv4Headers as sign } from './lib/sigv4-headers.js';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Broker } from '../../src/broker/index.js';
import { inProcessBrokerClient } from '../../src/cluster/index.js';
import { buildApp } from '../../src/gateway/index.js';
import {
  MetaStore,
  RedisScheduleWheel,
  deriveKey,
  startRedisServer,
} from '../../src/meta/index.js';
import type { TopicDescriptor } from '../../src/model/index.js';
import { summarizeLatencies } from './lib/percentiles.js';

export interface HttpRow {
  what: string;
  value: string;
  note: string;
}

interface Load {
  rps: number;
  total: number;
  ok: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function ms(value: number): string {
  return value.toFixed(value < 10 ? 1 : 0);
}

function runLoad(target: object): Promise<Load> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, 'delay-load.js'), JSON.stringify(target)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Load) : reject(new Error(`load exited ${code}`)),
    );
  });
}

/** A set-up call; a 503 (a Redis command timed out on a loaded machine) is tried again. */
async function call(url: string, method: string, path: string, headers: object, body?: unknown) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  let res: Response;
  for (let attempt = 1; ; attempt++) {
    res = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(text === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(text === undefined ? {} : { body: text }),
    });
    if (res.status !== 503 || attempt >= 20) break;
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const answer = await res.text();
  return (answer === '' ? {} : JSON.parse(answer)) as Record<string, string>;
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench:delay waited too long for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The copies dispatched to a topic: due time, store time, position. */
async function copies(broker: Broker, name: string, queues: number) {
  const out: { due: number; storedAt: number; logOffset: number }[] = [];
  for (let queueId = 0; queueId < queues; queueId++) {
    let from = 0;
    for (;;) {
      const page = await broker.store.readQueue(name, queueId, from, { maxMessages: 2000 });
      for (const m of page.messages)
        out.push({
          due: Number(m.properties.due),
          storedAt: m.storeTimestampMs,
          logOffset: m.logOffset,
        });
      if (page.messages.length === 0 || page.nextQueueOffset <= from) break;
      from = page.nextQueueOffset;
    }
  }
  return out;
}

/** Publishes `count` delayed messages in-process (fast set-up for the timing rows). */
async function schedule(broker: Broker, topic: TopicDescriptor, dues: number[]) {
  for (let i = 0; i < dues.length; i += 1000) {
    const batch = dues.slice(i, i + 1000).map((due) => ({
      body: Buffer.from('x'.repeat(100)),
      bodyEncoding: 'utf8' as const,
      properties: { due: String(due) },
      deliverAtMs: due,
    }));
    await broker.publish(topic, batch);
  }
}

export async function httpRows(options: {
  seconds: number;
  rate: number;
  storm: number;
  connections: number;
  /** Only the storm rows (a quick before/after of the dispatch). */
  stormOnly?: boolean;
}): Promise<HttpRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-delay-http-'));
  const redis = await startRedisServer({ dir });
  const masterKey = 'bench-master-key-0123456789abcdef';
  const logger = pino({ level: 'warn' });
  const meta = await MetaStore.open({ redisUrl: redis.url, masterKey });
  const wheel = new RedisScheduleWheel(meta.redis, meta.keys, '0');
  const broker = await Broker.open({
    dataDir: join(dir, 'broker-0'),
    brokerId: 0,
    macKey: deriveKey(masterKey, 'wharf-broker-mac'),
    logger,
    dataKeys: meta.dataKeys,
    scheduleWheel: wheel,
  });
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
  const probe = new Redis(redis.url);
  const rows: HttpRow[] = [];
  const scheduler = broker.scheduler!;
  try {
    const admin = { authorization: `Bearer ${adminToken}` };
    const { tenantId } = await call(url, 'POST', '/admin/v1/tenants', admin, { name: 'bench' });
    const key = await call(url, 'POST', `/admin/v1/tenants/${tenantId}/access-keys`, admin, {});
    const [ak, sk] = [key.accessKeyId, key.accessKeySecret];
    const instanceBody = { name: 'bench' };
    const { instanceId } = await call(
      url,
      'POST',
      '/v1/instances',
      sign(url, 'POST', '/v1/instances', ak, sk, JSON.stringify(instanceBody)),
      instanceBody,
    );
    const topics: Record<string, TopicDescriptor> = {};
    for (const name of ['http', 'rate', 'storm', 'plain']) {
      const path = `/v1/instances/${instanceId}/topics/${name}`;
      const body = { messageType: name === 'plain' ? 'NORMAL' : 'DELAY', queueCount: 8 };
      // on a loaded machine a Redis command may time out (503): try again rather than go on
      // without the topic
      for (let attempt = 1; topics[name] === undefined; attempt++) {
        await call(url, 'PUT', path, sign(url, 'PUT', path, ak, sk, JSON.stringify(body)), body);
        const found = await meta.topics.get(tenantId, instanceId, name).catch(() => null);
        if (found !== null) topics[name] = found;
        else if (attempt >= 10) throw new Error(`bench:delay: topic ${name} could not be created`);
        else await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }

    if (options.stormOnly !== true) {
      // 1. scheduling over signed HTTP: 32 messages a request, due in an hour (all stay pending)
      const publishPath = `/v1/instances/${instanceId}/topics/http/messages`;
      const body = JSON.stringify({
        messages: Array.from({ length: 32 }, (_, i) => ({
          body: `delayed message ${i} ${'x'.repeat(80)}`,
          deliverAt: Date.now() + 3_600_000,
        })),
      });
      process.stderr.write(`bench:delay: scheduling over HTTP for ${options.seconds} s…\n`);
      const load = await runLoad({
        url: `${url}${publishPath}`,
        headers: {
          ...sign(url, 'POST', publishPath, ak, sk, body),
          'content-type': 'application/json',
        },
        body,
        connections: options.connections,
        durationSeconds: options.seconds,
      });
      const scheduled = load.ok * 32;
      rows.push({
        what: 'schedules/s over signed HTTP',
        value: String(Math.round(load.rps * 32)),
        note: `${load.ok} requests of 32, p50 ${load.p50} ms, p99 ${load.p99} ms, non-2xx ${load.non2xx}; goal ≥ 20,000`,
      });
      await until('the feeder to catch up', () => scheduler.isReady());
      const pendingKey = meta.keys.wheelPending('0');
      const pending = await probe.zcard(pendingKey);
      const bytes = Number(await probe.memory('USAGE', pendingKey, 'SAMPLES', 0));
      rows.push({
        what: 'Redis bytes per pending message',
        value: (bytes / pending).toFixed(1),
        note: `MEMORY USAGE of the wheel over ${pending} pending (${scheduled} scheduled); goal ≤ 150`,
      });

      // 2. the rebuild of a lost wheel, with what is pending now
      const rebuildsBefore = scheduler.rebuilds;
      const lostAt = performance.now();
      await probe.del(meta.keys.wheelMark('0'));
      await until('the rebuild', () => scheduler.rebuilds > rebuildsBefore);
      const rebuildMs = performance.now() - lostAt;
      rows.push({
        what: `wheel rebuild, ${pending} pending`,
        value: `${(rebuildMs / 1000).toFixed(2)} s`,
        note: `from deleting the mark to ready (incl. ≤ 500 ms to notice); ≈ ${((rebuildMs / pending) * 1000).toFixed(1)} s per 1M, linear estimate`,
      });

      // 3. lateness when due at a steady rate
      const rateCount = options.rate * options.seconds;
      const rateStart = Date.now() + 5_000 + Math.ceil(rateCount / 20);
      await schedule(
        broker,
        topics.rate,
        Array.from(
          { length: rateCount },
          (_, i) => rateStart + Math.floor((i * 1000) / options.rate),
        ),
      );
      const before = scheduler.dispatched;
      process.stderr.write(`bench:delay: ${rateCount} due at ${options.rate}/s…\n`);
      await until('the steady-rate dispatch', () => scheduler.dispatched >= before + rateCount);
      const rateCopies = await copies(broker, `${tenantId}/${instanceId}/rate`, 8);
      const rateLateness = summarizeLatencies(rateCopies.map((c) => c.storedAt - c.due));
      rows.push({
        what: `lateness at ${options.rate} due/s, ${rateCount} msgs`,
        value: `p50 ${ms(rateLateness.p50Ms)} / p99 ${ms(rateLateness.p99Ms)} / max ${ms(rateLateness.maxMs)} ms`,
        note: 'dispatch (copy stored) minus deliverAt; goal p99 < 100 ms',
      });
    }

    // 4. the storm: `storm` messages due in one second, ordinary publishes beside it
    const stormSecond = Date.now() + 10_000 + Math.ceil(options.storm / 20);
    await schedule(
      broker,
      topics.storm,
      Array.from({ length: options.storm }, () => stormSecond + Math.floor(Math.random() * 1000)),
    );
    await until('the storm fed', () => scheduler.isReady());
    const stormBefore = scheduler.dispatched;
    const publishMs: number[] = [];
    let flowing = true;
    const ordinary = (async () => {
      while (flowing) {
        const started = performance.now();
        await broker.publish(topics.plain, [{ body: Buffer.from('now'), bodyEncoding: 'utf8' }]);
        publishMs.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    process.stderr.write(`bench:delay: a storm of ${options.storm}…\n`);
    await until('the storm dispatched', () => scheduler.dispatched >= stormBefore + options.storm);
    flowing = false;
    await ordinary;
    const stormCopies = await copies(broker, `${tenantId}/${instanceId}/storm`, 8);
    const lastAt = stormCopies.reduce((last, c) => Math.max(last, c.storedAt), 0);
    const firstAt = stormCopies.reduce((first, c) => Math.min(first, c.storedAt), Infinity);
    const stormLateness = summarizeLatencies(stormCopies.map((c) => c.storedAt - c.due));
    // earlier-due first: in log order, how far a copy's due time falls behind the latest before it
    stormCopies.sort((a, b) => a.logOffset - b.logOffset);
    let latestDue = 0;
    let worstInversion = 0;
    for (const copy of stormCopies) {
      worstInversion = Math.max(worstInversion, latestDue - copy.due);
      latestDue = Math.max(latestDue, copy.due);
    }
    const ordinaryMs = summarizeLatencies(publishMs);
    rows.push({
      what: `storm: ${options.storm} due in one second`,
      value: `all by +${((lastAt - stormSecond - 1000) / 1000).toFixed(2)} s after the second`,
      note: `lateness p50 ${ms(stormLateness.p50Ms)} / p99 ${ms(stormLateness.p99Ms)} / max ${ms(stormLateness.maxMs)} ms; dispatch ${Math.round(options.storm / ((lastAt - firstAt) / 1000))} msg/s from first to last copy; order: worst inversion ${worstInversion} ms; goal all within 5 s`,
    });
    rows.push({
      what: 'ordinary publish during the storm',
      value: `p50 ${ms(ordinaryMs.p50Ms)} / p99 ${ms(ordinaryMs.p99Ms)} ms`,
      note: `${publishMs.length} single-message publishes (in-process) while it was dispatched`,
    });
  } finally {
    probe.disconnect();
    await app.close();
    await broker.close();
    await meta.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
