// Redis Streams peer (ioredis): one stream per run, XADD pipelined in batches with a window of
// unanswered XADDs, a consumer group read with XREADGROUP COUNT 256 and acked with XACK per
// batch (sent without waiting, so the next read follows on the same connection). Not durable:
// this Redis has no persistence. No MAXLEN trim; the stream is deleted at teardown.
import { Redis } from 'ioredis';
import { LatencyProbe } from '../lib/latency-probe.js';
import { runOnSchedule } from '../lib/pacer.js';
import {
  type ConsumeOptions,
  type LatencyOptions,
  type LatencyResult,
  type PeerDriver,
  type PublishOptions,
  type ThroughputResult,
  configNumber,
  configString,
  throughput,
  uniqueName,
} from '../lib/peer-driver.js';
import { SendWindow } from '../lib/send-window.js';

export interface RedisStreamsConfig {
  url?: string;
  /** Unanswered XADDs at most. Default 256. */
  window?: number;
  /** XREADGROUP COUNT. Default 256. */
  readCount?: number;
}

export interface StreamEntry {
  id: Buffer;
  /** Value of the entry's first field. */
  body: Buffer;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const FIELD = 'b';
const THROUGHPUT_GROUP = 'throughput';
const LATENCY_GROUP = 'latency';
/** How long a latency read blocks before checking whether the run is over. */
const BLOCK_MS = 100;

/** Entries of an XREADGROUP reply for one stream (RESP2 shape); [] for a nil reply. */
export function parseReadGroupReply(reply: unknown): StreamEntry[] {
  if (reply === null) return [];
  if (!Array.isArray(reply) || reply.length !== 1) throw new Error('unexpected XREADGROUP reply');
  const [, items] = reply[0] as [unknown, unknown];
  if (!Array.isArray(items)) throw new Error('unexpected XREADGROUP reply');
  return items.map((item: unknown) => {
    if (!Array.isArray(item)) throw new Error('unexpected XREADGROUP entry');
    const [id, fields] = item as [unknown, unknown];
    if (!Buffer.isBuffer(id) || !Array.isArray(fields) || !Buffer.isBuffer(fields[1])) {
      throw new Error('unexpected XREADGROUP entry');
    }
    return { id, body: fields[1] };
  });
}

export class RedisStreamsDriver implements PeerDriver {
  name = 'Redis Streams';
  readonly durable = 'no (no persistence)';
  private readonly url: string;
  private readonly window: number;
  private readonly readCount: number;
  /** This run's stream key, deleted at teardown. */
  readonly key = uniqueName('wharf:bench:stream', ':');
  private producer: Redis | null = null;
  private consumer: Redis | null = null;

  constructor(config: RedisStreamsConfig = {}) {
    this.url = config.url ?? DEFAULT_URL;
    this.window = config.window ?? 256;
    this.readCount = config.readCount ?? 256;
  }

  get mode(): string {
    return `pipelined XADD ≤${this.window}, XREADGROUP COUNT ${this.readCount} + XACK`;
  }

  async setup(): Promise<void> {
    this.producer = await this.open();
    this.consumer = await this.open();
    const info = await this.producer.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    if (version !== undefined) this.name = `Redis ${version} Streams`;
    await this.producer.xgroup('CREATE', this.key, THROUGHPUT_GROUP, '$', 'MKSTREAM');
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const producer = this.required(this.producer);
    const windowSize = Math.max(options.window ?? this.window, options.batch);
    const window = new SendWindow(windowSize);
    const body = Buffer.alloc(options.bodyBytes, 0x61);
    const startMs = performance.now();
    for (let sent = 0; sent < options.messages;) {
      const count = Math.min(options.batch, options.messages - sent);
      const wait = window.acquire(count);
      if (wait !== undefined) await wait;
      const pipeline = producer.pipeline();
      for (let i = 0; i < count; i++) pipeline.xadd(this.key, '*', FIELD, body);
      pipeline.exec().then(
        (results) => {
          const failed = results?.find(([error]) => error !== null);
          if (failed === undefined) window.release(count);
          else window.fail(failed[0] ?? new Error('XADD failed'));
        },
        (error: Error) => window.fail(error),
      );
      sent += count;
    }
    await window.idle();
    return throughput(options.messages, performance.now() - startMs, windowSize);
  }

  async consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    const consumer = this.required(this.consumer);
    const count = options.batch ?? this.readCount;
    const acks: Promise<number>[] = [];
    const startMs = performance.now();
    let received = 0;
    while (received < options.messages) {
      const entries = await this.read(consumer, THROUGHPUT_GROUP, count, null);
      if (entries.length === 0) throw new Error(`stream ran dry after ${received} messages`);
      received += entries.length;
      acks.push(consumer.xack(this.key, THROUGHPUT_GROUP, ...entries.map((entry) => entry.id)));
    }
    await Promise.all(acks);
    return throughput(received, performance.now() - startMs, count);
  }

  async latency(options: LatencyOptions): Promise<LatencyResult> {
    const producer = this.required(this.producer);
    const consumer = this.required(this.consumer);
    await producer.xgroup('CREATE', this.key, LATENCY_GROUP, '$');
    const window = new SendWindow(this.window);
    const probe = new LatencyProbe();
    let sent = 0;
    let running = true;
    const consuming = (async () => {
      while (running) {
        const entries = await this.read(consumer, LATENCY_GROUP, this.readCount, BLOCK_MS);
        for (const entry of entries) probe.receive(entry.body);
        if (entries.length > 0) {
          void consumer.xack(this.key, LATENCY_GROUP, ...entries.map((entry) => entry.id));
        }
      }
    })();
    const consumerFailure: { error: Error | null } = { error: null };
    const consumed = consuming.catch((error: Error) => {
      consumerFailure.error = error;
    });
    const send = (scheduledMs: number): void => {
      producer.xadd(this.key, '*', FIELD, LatencyProbe.body(options.bodyBytes, scheduledMs)).then(
        () => window.release(),
        (error: Error) => window.fail(error),
      );
      sent++;
    };
    const paced = await runOnSchedule({
      ratePerSec: options.ratePerSec,
      durationMs: options.durationMs,
      send: (_index, scheduledMs) => {
        const wait = window.acquire();
        if (wait === undefined) return send(scheduledMs);
        return wait.then(() => send(scheduledMs));
      },
    });
    probe.expect(sent);
    await window.idle();
    await probe.drained(options.drainTimeoutMs ?? 10_000);
    running = false;
    await consumed;
    if (consumerFailure.error !== null) throw consumerFailure.error;
    return {
      ...probe.summarize(),
      ratePerSec: options.ratePerSec,
      sent,
      sendLagP50Ms: paced.sendLag.p50Ms,
      sendLagP99Ms: paced.sendLag.p99Ms,
    };
  }

  async teardown(): Promise<void> {
    const connection = this.producer ?? this.consumer;
    if (connection !== null) {
      try {
        await connection.del(this.key);
      } catch (error) {
        process.stderr.write(`redis: could not delete stream ${this.key}: ${String(error)}\n`);
      }
    }
    for (const redis of [this.producer, this.consumer]) redis?.disconnect();
    this.producer = this.consumer = null;
  }

  private async open(): Promise<Redis> {
    // Fail fast when Redis is not there: no retries, no offline queue.
    const redis = new Redis(this.url, {
      protocol: 2,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => {}); // surfaced by the failing command instead
    await redis.connect();
    return redis;
  }

  private async read(
    consumer: Redis,
    group: string,
    count: number,
    blockMs: number | null,
  ): Promise<StreamEntry[]> {
    const args: (string | number)[] = ['GROUP', group, 'bench', 'COUNT', count];
    if (blockMs !== null) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.key, '>');
    return parseReadGroupReply(await consumer.callBuffer('XREADGROUP', ...args));
  }

  private required<T>(value: T | null): T {
    if (value === null) throw new Error('Redis Streams driver used before setup()');
    return value;
  }
}

/** PeerDriverFactory for the child-process runner. */
export function createRedisStreamsDriver(config: Record<string, unknown>): RedisStreamsDriver {
  return new RedisStreamsDriver({
    url: configString(config, 'url', DEFAULT_URL),
    window: configNumber(config, 'window', 256),
    readCount: configNumber(config, 'readCount', 256),
  });
}
