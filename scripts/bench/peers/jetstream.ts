// NATS JetStream peer with the official `nats` client: a file-storage stream per run, acked
// publishes with a window of PubAcks in flight, a durable pull consumer (consume in batches of
// 256, explicit ack per message). Not durable per message: nats-server 2.9 writes to the OS and
// fsyncs every 2 minutes. Two publishers: `client` (js.publish, one promise, timer and inbox
// request per message; the client uses a whole core before the server does) and `raw` (a core
// NATS publish to the stream subject with one shared reply subject, counting PubAcks).
import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Msg,
  type NatsConnection,
  type Subscription,
  StorageType,
  connect,
  createInbox,
} from 'nats';
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

export type JetStreamPublisher = 'client' | 'raw';

export interface JetStreamConfig {
  servers?: string;
  publisher?: JetStreamPublisher;
  /** PubAcks awaited at most. Default 256. */
  window?: number;
  /** Messages per pull request. Default 256. */
  pullBatch?: number;
}

const DEFAULT_SERVERS = '127.0.0.1:4222';
/** `{"error"`: a JetStream API error reply; a PubAck starts `{"stream"`. */
const ERROR_REPLY_BYTE = 'e'.charCodeAt(0);

/** A drain that makes no progress this long has lost messages: fail instead of hanging. */
const STALL_MS = 10_000;
const THROUGHPUT_CONSUMER = 'throughput';
const LATENCY_CONSUMER = 'latency';

/** Sends one message and arranges for `window` to be released (or failed) when its PubAck comes. */
type Publish = (body: Uint8Array, window: SendWindow) => void;

export class JetStreamDriver implements PeerDriver {
  name = 'NATS JetStream';
  readonly durable = 'no (fsync every 2 min)';
  private readonly servers: string;
  private readonly publisher: JetStreamPublisher;
  private readonly window: number;
  private readonly pullBatch: number;
  /** This run's stream, deleted at teardown. */
  readonly stream: string;
  private readonly subject: string;
  private nc: NatsConnection | null = null;
  private jsm: JetStreamManager | null = null;
  private js: JetStreamClient | null = null;
  private streamCreated = false;
  /** Raw publisher: the PubAck subscription and the window its acks release. */
  private ackSubscription: Subscription | null = null;
  private ackWindow: SendWindow | null = null;
  /** The open pull consumer, so latency() and teardown() can close it. */
  private messages: ConsumerMessages | null = null;
  private readonly ackInbox = createInbox();

  constructor(config: JetStreamConfig = {}) {
    this.servers = config.servers ?? DEFAULT_SERVERS;
    this.publisher = config.publisher ?? 'client';
    this.window = config.window ?? 256;
    this.pullBatch = config.pullBatch ?? 256;
    this.stream = uniqueName('WHARF_BENCH', '_');
    this.subject = `wharf.bench.${this.stream}`;
  }

  get mode(): string {
    const publisher = this.publisher === 'raw' ? 'raw publisher' : 'js.publish';
    return `file stream, ${publisher} ≤${this.window}, pull ${this.pullBatch}, explicit acks`;
  }

  async setup(): Promise<void> {
    const nc = await connect({ servers: this.servers, maxReconnectAttempts: 0 });
    this.nc = nc;
    this.name = `NATS JetStream ${nc.info?.version ?? ''}`.trim();
    this.jsm = await nc.jetstreamManager();
    this.js = nc.jetstream();
    await this.jsm.streams.add({
      name: this.stream,
      subjects: [this.subject],
      storage: StorageType.File,
      num_replicas: 1,
    });
    this.streamCreated = true;
    await this.addConsumer(THROUGHPUT_CONSUMER, DeliverPolicy.All);
    if (this.publisher === 'raw') {
      this.ackSubscription = nc.subscribe(this.ackInbox, {
        callback: (error, reply) => this.onRawAck(error, reply),
      });
    }
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const windowSize = options.window ?? this.window;
    const window = new SendWindow(windowSize);
    const publish = this.publishFunction();
    const body = Buffer.alloc(options.bodyBytes, 0x61);
    const startMs = performance.now();
    for (let i = 0; i < options.messages; i++) {
      const wait = window.acquire();
      if (wait !== undefined) await wait;
      publish(body, window);
    }
    await window.idle();
    return throughput(options.messages, performance.now() - startMs, windowSize);
  }

  async consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    const batch = options.batch ?? this.pullBatch;
    const startMs = performance.now();
    let received = 0;
    let stalled = false;
    const unwatch = watchProgress(
      () => received,
      STALL_MS,
      () => {
        stalled = true;
        void this.messages?.close();
      },
    );
    try {
      await this.consume(THROUGHPUT_CONSUMER, batch, () => ++received >= options.messages);
    } finally {
      unwatch();
    }
    if (stalled) throw new Error(`no message for ${STALL_MS} ms after ${received}`);
    return throughput(options.messages, performance.now() - startMs, batch);
  }

  async latency(options: LatencyOptions): Promise<LatencyResult> {
    const window = new SendWindow(this.window);
    const publish = this.publishFunction();
    const probe = new LatencyProbe();
    let sent = 0;
    // A consumer of its own: the throughput one may still have pull requests open at the server
    // for an inbox the client has left, which would swallow messages until their ack wait.
    await this.addConsumer(LATENCY_CONSUMER, DeliverPolicy.New);
    const consumerFailure: { error: Error | null } = { error: null };
    const consuming = this.consume(LATENCY_CONSUMER, this.pullBatch, (message) => {
      probe.receive(message.data);
      return false;
    }).catch((error: Error) => {
      consumerFailure.error = error;
    });
    const send = (scheduledMs: number): void => {
      publish(LatencyProbe.body(options.bodyBytes, scheduledMs), window);
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
    await this.messages?.close();
    await consuming;
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
    await this.messages?.close();
    this.messages = null;
    this.ackSubscription?.unsubscribe();
    this.ackSubscription = null;
    if (this.streamCreated && this.jsm !== null) {
      try {
        await this.jsm.streams.delete(this.stream);
        this.streamCreated = false;
      } catch (error) {
        process.stderr.write(
          `jetstream: could not delete stream ${this.stream}: ${String(error)}\n`,
        );
      }
    }
    await this.nc?.close().catch(() => {});
    this.nc = this.jsm = this.js = null;
  }

  /**
   * Pulls in batches, acking each message, until `onMessage` returns true. Resolves when the
   * consumer is closed (by this loop or by latency()).
   */
  private async consume(
    name: string,
    batch: number,
    onMessage: (message: JsMsg) => boolean,
  ): Promise<void> {
    const js = this.required(this.js);
    const consumer = await js.consumers.get(this.stream, name);
    const messages = await consumer.consume({ max_messages: batch });
    this.messages = messages;
    try {
      for await (const message of messages) {
        message.ack();
        if (onMessage(message)) break;
      }
    } finally {
      // Not awaited: after a break, the client's close() waits on an iterator nobody reads and
      // never resolves (nats 2.29); stop() has already unsubscribed by then.
      void messages.close();
      if (this.messages === messages) this.messages = null;
    }
  }

  private async addConsumer(name: string, deliverPolicy: DeliverPolicy): Promise<void> {
    await this.required(this.jsm).consumers.add(this.stream, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: deliverPolicy,
      max_ack_pending: Math.max(1000, this.pullBatch * 4),
    });
  }

  private publishFunction(): Publish {
    const nc = this.required(this.nc);
    if (this.publisher === 'raw') {
      return (body, window) => {
        this.ackWindow = window;
        nc.publish(this.subject, body, { reply: this.ackInbox });
      };
    }
    const js = this.required(this.js);
    return (body, window) => {
      js.publish(this.subject, body).then(
        () => window.release(),
        (error: unknown) => window.fail(error instanceof Error ? error : new Error(String(error))),
      );
    };
  }

  private onRawAck(error: Error | null, reply: Msg): void {
    const window = this.ackWindow;
    if (window === null) return;
    if (error !== null) return window.fail(error);
    if (reply.data[2] === ERROR_REPLY_BYTE) {
      return window.fail(new Error(`JetStream refused a publish: ${reply.string()}`));
    }
    window.release();
  }

  private required<T>(value: T | null): T {
    if (value === null) throw new Error('JetStream driver used before setup()');
    return value;
  }
}

/** PeerDriverFactory for the child-process runner. */
export function createJetStreamDriver(config: Record<string, unknown>): JetStreamDriver {
  return new JetStreamDriver({
    servers: configString(config, 'servers', DEFAULT_SERVERS),
    publisher: configString<JetStreamPublisher>(config, 'publisher', 'client', ['client', 'raw']),
    window: configNumber(config, 'window', 256),
    pullBatch: configNumber(config, 'pullBatch', 256),
  });
}
