// Wharf over its Aliyun MQ HTTP compatibility routes, as a PeerDriver: the /v1 row's workload
// (same messages, sizes and phases) in the protocol's shape — one message a publish (it has no
// batch publish) with a window of publishes in flight, long-poll consumes of 16 (its maximum) by
// concurrent consumers with acks sent as soon as a batch arrives, and a paced latency run with
// its own group. Topic and groups are made through /v1 (the protocol cannot create them).
import { LatencyProbe } from '../lib/latency-probe.js';
import { runLatency } from '../lib/latency-run.js';
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
import { MqHttpClient, type MqConsumed } from './mq-http-client.js';
import { SignedClient } from './signed-client.js';

/** Most messages a consume may ask for (the protocol's limit). */
const CONSUME_MAX = 16;

export class WharfMqHttpDriver implements PeerDriver {
  readonly name = 'Wharf (Aliyun MQ HTTP)';
  readonly durable = 'yes (fdatasync)';
  private readonly client: MqHttpClient;
  private readonly admin: SignedClient;
  private readonly window: number;
  private readonly consumers: number;
  private readonly base: string;

  constructor(config: Record<string, unknown>) {
    this.window = configNumber(config, 'window', 256);
    this.consumers = configNumber(config, 'consumers', 16);
    const instanceId = configString(config, 'instanceId', '');
    this.base = `/v1/instances/${instanceId}`;
    const url = configString(config, 'url', 'http://127.0.0.1:8080');
    const accessKeyId = configString(config, 'accessKeyId', '');
    const accessKeySecret = configString(config, 'accessKeySecret', '');
    this.client = new MqHttpClient({
      url,
      accessKeyId,
      accessKeySecret,
      instanceId,
      // one message a request: more sockets than /v1's 64, below the gateway's 256 per address
      maxSockets: Math.max(Math.min(this.window, 128), this.consumers * 2),
    });
    this.admin = new SignedClient({
      url,
      accessKeyId,
      accessKeySecret,
      region: 'local',
      maxSockets: 1,
    });
  }

  get mode(): string {
    return `sync flush, 1 message a publish, ${this.window} in flight, ${this.consumers} consumers × ${CONSUME_MAX} + ack`;
  }

  private readonly topic = uniqueName('mqbench');
  private readonly groups = {
    throughput: uniqueName('mqthroughput'),
    latency: uniqueName('mqlatency'),
  };

  async setup(): Promise<void> {
    await this.admin.ok('PUT', `${this.base}/topics/${this.topic}`, {
      messageType: 'NORMAL',
      queueCount: 8,
    });
    await this.admin.ok('PUT', `${this.base}/groups/${this.groups.throughput}`, {
      invisibleSeconds: 60,
    });
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const windowSize = options.window ?? this.window;
    const window = new SendWindow(windowSize);
    const body = 'a'.repeat(options.bodyBytes);
    const startMs = performance.now();
    for (let sent = 0; sent < options.messages; sent++) {
      const wait = window.acquire(1);
      if (wait !== undefined) await wait;
      this.client.publish(this.topic, body).then(
        () => window.release(1),
        (error: Error) => window.fail(error),
      );
    }
    await window.idle();
    return throughput(options.messages, performance.now() - startMs, windowSize);
  }

  async consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    const max = Math.min(CONSUME_MAX, options.batch ?? CONSUME_MAX);
    let received = 0;
    const acks: Promise<unknown>[] = [];
    const startMs = performance.now();
    const consumer = async (): Promise<void> => {
      while (received < options.messages) {
        const messages = await this.client.consume(this.topic, this.groups.throughput, max, 1);
        if (messages.length === 0) continue;
        received += messages.length;
        acks.push(this.ack(this.groups.throughput, messages));
      }
    };
    await Promise.all(Array.from({ length: this.consumers }, consumer));
    await Promise.all(acks);
    return throughput(received, performance.now() - startMs, max);
  }

  async latency(options: LatencyOptions): Promise<LatencyResult> {
    await this.admin.ok('PUT', `${this.base}/groups/${this.groups.latency}`, {
      invisibleSeconds: 60,
    });
    const probe = new LatencyProbe();
    const window = new SendWindow(256);
    let running = true;
    const consumer = async (): Promise<void> => {
      while (running) {
        const messages = await this.client.consume(this.topic, this.groups.latency, CONSUME_MAX, 1);
        // the probe's stamp is binary: it travels as base64 text (the protocol's bodies are text)
        for (const message of messages) probe.receive(Buffer.from(message.body, 'base64'));
        if (messages.length > 0) void this.ack(this.groups.latency, messages);
      }
    };
    const consuming = Promise.all(Array.from({ length: 4 }, consumer));
    return runLatency({
      options,
      window,
      probe,
      send: (scheduledMs) => {
        const body = LatencyProbe.body(options.bodyBytes, scheduledMs).toString('base64');
        this.client.publish(this.topic, body).then(
          () => window.release(1),
          (error: Error) => window.fail(error),
        );
      },
      stop: async () => {
        running = false;
        await consuming;
      },
    });
  }

  async teardown(): Promise<void> {
    try {
      await this.admin.request('DELETE', `${this.base}/topics/${this.topic}`);
      for (const group of Object.values(this.groups)) {
        await this.admin.request('DELETE', `${this.base}/groups/${group}`);
      }
    } finally {
      this.client.close();
      this.admin.close();
    }
  }

  private ack(group: string, messages: readonly MqConsumed[]): Promise<unknown> {
    return this.client.ack(
      this.topic,
      group,
      messages.map((m) => m.receiptHandle),
    );
  }
}

export function createWharfMqHttpDriver(config: Record<string, unknown>): PeerDriver {
  return new WharfMqHttpDriver(config);
}
