// RabbitMQ peer over AMQP 0-9-1 (amqplib): a durable queue per run, persistent messages,
// publisher confirms with a bounded window, a consumer with prefetch and manual acks sent
// `multiple` every 32. The quorum queue (Raft log, fdatasync before confirming) is the
// like-for-like peer for Wharf's sync flush; the classic queue is shown only beside it.
// Publisher and consumer use separate connections, as RabbitMQ advises: flow control that
// blocks a publishing connection must not stall deliveries.
import { once } from 'node:events';
import {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  connect,
} from 'amqplib';
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
  watchProgress,
} from '../lib/peer-driver.js';
import { SendWindow } from '../lib/send-window.js';

export type RabbitMqQueueType = 'quorum' | 'classic';

export interface RabbitMqConfig {
  url?: string;
  queueType?: RabbitMqQueueType;
  /** Unconfirmed publishes at most. Default 256. */
  window?: number;
  /** Unacked deliveries at most (basic.qos). Default 256. */
  prefetch?: number;
  /** Ack with `multiple` every this many deliveries. Default 32. */
  ackEvery?: number;
}

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** A drain that makes no progress this long has lost messages: fail instead of hanging. */
const STALL_MS = 10_000;

export class RabbitMqDriver implements PeerDriver {
  name = 'RabbitMQ';
  readonly durable: string;
  private readonly url: string;
  private readonly queueType: RabbitMqQueueType;
  private readonly window: number;
  private readonly prefetch: number;
  private readonly ackEvery: number;
  /** This run's queue, deleted at teardown. */
  readonly queue: string;
  private publisher: ChannelModel | null = null;
  private consumer: ChannelModel | null = null;
  private publishChannel: ConfirmChannel | null = null;
  private consumeChannel: Channel | null = null;
  private queueCreated = false;
  /** Fail whatever waits on the publish window or the consumer when a channel or connection breaks. */
  private failPublish: (error: Error) => void = () => {};
  private failConsume: (error: Error) => void = () => {};

  constructor(config: RabbitMqConfig = {}) {
    this.url = config.url ?? DEFAULT_URL;
    this.queueType = config.queueType ?? 'quorum';
    this.window = config.window ?? 256;
    this.prefetch = config.prefetch ?? 256;
    this.ackEvery = config.ackEvery ?? 32;
    this.queue = uniqueName(`wharf-bench-${this.queueType}`);
    this.durable = this.queueType === 'quorum' ? 'yes (fdatasync)' : 'yes (batched fsync)';
  }

  get mode(): string {
    return `${this.queueType} queue, confirms ≤${this.window}, prefetch ${this.prefetch}, ack ×${this.ackEvery}`;
  }

  async setup(): Promise<void> {
    this.publisher = await this.open();
    this.consumer = await this.open();
    this.name = `RabbitMQ ${this.publisher.connection.serverProperties.version}`;
    this.publishChannel = await this.publisher.createConfirmChannel();
    this.consumeChannel = await this.consumer.createChannel();
    for (const channel of [this.publishChannel, this.consumeChannel]) {
      channel.on('error', (error: Error) => this.broken(error));
      channel.on('close', () => this.broken(new Error('AMQP channel closed')));
    }
    await this.publishChannel.assertQueue(this.queue, {
      durable: true,
      arguments: { 'x-queue-type': this.queueType },
    });
    this.queueCreated = true;
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const channel = this.required(this.publishChannel);
    const windowSize = options.window ?? this.window;
    const window = new SendWindow(windowSize);
    this.failPublish = (error) => window.fail(error);
    const body = Buffer.alloc(options.bodyBytes, 0x61);
    const startMs = performance.now();
    for (let i = 0; i < options.messages; i++) {
      const wait = window.acquire();
      if (wait !== undefined) await wait;
      if (!this.publish(channel, window, body)) await once(channel, 'drain');
    }
    await window.idle();
    return throughput(options.messages, performance.now() - startMs, windowSize);
  }

  async consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    const prefetch = options.batch ?? this.prefetch;
    const startMs = performance.now();
    let received = 0;
    const consumer = this.consume(prefetch, options.messages, () => received++);
    const unwatch = watchProgress(
      () => received,
      STALL_MS,
      () =>
        this.failConsume(new Error(`no delivery for ${STALL_MS} ms after ${received} messages`)),
    );
    try {
      await consumer.done;
    } finally {
      unwatch();
    }
    await consumer.stop();
    return throughput(options.messages, performance.now() - startMs, prefetch);
  }

  async latency(options: LatencyOptions): Promise<LatencyResult> {
    const channel = this.required(this.publishChannel);
    const window = new SendWindow(this.window);
    const probe = new LatencyProbe();
    let sent = 0;
    this.failPublish = (error) => window.fail(error);
    const consumer = this.consume(this.prefetch, Number.POSITIVE_INFINITY, (message) =>
      probe.receive(message.content),
    );
    const consumerFailure: { error: Error | null } = { error: null };
    consumer.done.catch((error: Error) => (consumerFailure.error = error));
    const publish = (scheduledMs: number): void => {
      this.publish(channel, window, LatencyProbe.body(options.bodyBytes, scheduledMs));
      sent++;
    };
    const paced = await runOnSchedule({
      ratePerSec: options.ratePerSec,
      durationMs: options.durationMs,
      send: (_index, scheduledMs) => {
        const wait = window.acquire();
        if (wait === undefined) return publish(scheduledMs);
        return wait.then(() => publish(scheduledMs));
      },
    });
    probe.expect(sent);
    await window.idle();
    await probe.drained(options.drainTimeoutMs ?? 10_000);
    if (consumerFailure.error !== null) throw consumerFailure.error;
    await consumer.stop();
    return {
      ...probe.summarize(),
      ratePerSec: options.ratePerSec,
      sent,
      sendLagP50Ms: paced.sendLag.p50Ms,
      sendLagP99Ms: paced.sendLag.p99Ms,
    };
  }

  async teardown(): Promise<void> {
    this.failPublish = this.failConsume = () => {};
    if (this.queueCreated) {
      // A channel closed by an error cannot delete: use a fresh one on either connection.
      const connection = this.publisher ?? this.consumer;
      try {
        const channel = await connection!.createChannel();
        await channel.deleteQueue(this.queue);
        await channel.close();
        this.queueCreated = false;
      } catch (error) {
        process.stderr.write(`rabbitmq: could not delete queue ${this.queue}: ${String(error)}\n`);
      }
    }
    for (const connection of [this.publisher, this.consumer]) {
      await connection?.close().catch(() => {});
    }
    this.publisher = this.consumer = null;
    this.publishChannel = null;
    this.consumeChannel = null;
  }

  private broken(error: Error): void {
    this.failPublish(error);
    this.failConsume(error);
  }

  private async open(): Promise<ChannelModel> {
    const connection = await connect(this.url);
    connection.on('error', (error: Error) => this.broken(error));
    return connection;
  }

  private publish(channel: ConfirmChannel, window: SendWindow, body: Buffer): boolean {
    return channel.publish('', this.queue, body, { persistent: true }, (error: unknown) => {
      if (error === null || error === undefined) window.release();
      else window.fail(new Error('RabbitMQ nacked a publish'));
    });
  }

  /**
   * Consumes until `count` deliveries arrived, acking `multiple` every ackEvery and at the end.
   * `done` resolves at the count (never, for an unbounded count); `stop` cancels the consumer and
   * acks what is left.
   */
  private consume(
    prefetch: number,
    count: number,
    onMessage: (message: ConsumeMessage) => void,
  ): { done: Promise<void>; stop(): Promise<void> } {
    const channel = this.required(this.consumeChannel);
    let received = 0;
    let unacked: ConsumeMessage | null = null;
    let resolveDone!: () => void;
    let rejectDone!: (error: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    this.failConsume = (error) => rejectDone(error);
    const started = channel.prefetch(prefetch).then(() =>
      channel.consume(
        this.queue,
        (message) => {
          if (message === null) return rejectDone(new Error('consumer cancelled by RabbitMQ'));
          received++;
          onMessage(message);
          unacked = message;
          if (received % this.ackEvery === 0 || received === count) {
            channel.ack(message, true);
            unacked = null;
          }
          if (received === count) resolveDone();
        },
        { noAck: false },
      ),
    );
    started.catch((error: unknown) =>
      rejectDone(error instanceof Error ? error : new Error(String(error))),
    );
    const stop = async (): Promise<void> => {
      const { consumerTag } = await started;
      await channel.cancel(consumerTag);
      if (unacked !== null) channel.ack(unacked, true);
      unacked = null;
    };
    return { done, stop };
  }

  private required<T>(value: T | null): T {
    if (value === null) throw new Error('RabbitMQ driver used before setup()');
    return value;
  }
}

/** PeerDriverFactory for the child-process runner. */
export function createRabbitMqDriver(config: Record<string, unknown>): RabbitMqDriver {
  return new RabbitMqDriver({
    url: configString(config, 'url', DEFAULT_URL),
    queueType: configString<RabbitMqQueueType>(config, 'queueType', 'quorum', [
      'quorum',
      'classic',
    ]),
    window: configNumber(config, 'window', 256),
    prefetch: configNumber(config, 'prefetch', 256),
    ackEvery: configNumber(config, 'ackEvery', 32),
  });
}
