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
} from '../lib/peer-driver.js';
import { SendWindow } from '../lib/send-window.js';
import { BenchResources } from './bench-resources.js';
import { consumeForThroughput, startProbeConsumers } from './consumer-loops.js';
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
  private readonly resources: BenchResources;

  constructor(config: Record<string, unknown>) {
    this.window = configNumber(config, 'window', 256);
    this.consumers = configNumber(config, 'consumers', 16);
    const instanceId = configString(config, 'instanceId', '');
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
    this.resources = new BenchResources(this.admin, `/v1/instances/${instanceId}`, 'mq');
  }

  get mode(): string {
    return `sync flush, 1 message a publish, ${this.window} in flight, ${this.consumers} consumers × ${CONSUME_MAX} + ack`;
  }

  setup(): Promise<void> {
    return this.resources.create();
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const windowSize = options.window ?? this.window;
    const window = new SendWindow(windowSize);
    const body = 'a'.repeat(options.bodyBytes);
    const startMs = performance.now();
    for (let sent = 0; sent < options.messages; sent++) {
      const wait = window.acquire(1);
      if (wait !== undefined) await wait;
      this.client.publish(this.resources.topic, body).then(
        () => window.release(1),
        (error: Error) => window.fail(error),
      );
    }
    await window.idle();
    return throughput(options.messages, performance.now() - startMs, windowSize);
  }

  consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    const { topic, groups } = this.resources;
    const max = Math.min(CONSUME_MAX, options.batch ?? CONSUME_MAX);
    return consumeForThroughput({
      consumers: this.consumers,
      messages: options.messages,
      batch: max,
      receive: () => this.client.consume(topic, groups.throughput, max, 1),
      ack: (messages) => this.ack(groups.throughput, messages),
    });
  }

  async latency(options: LatencyOptions): Promise<LatencyResult> {
    const { topic, groups } = this.resources;
    await this.resources.createLatencyGroup();
    const probe = new LatencyProbe();
    const window = new SendWindow(256);
    const stop = startProbeConsumers({
      consumers: 4,
      probe,
      receive: () => this.client.consume(topic, groups.latency, CONSUME_MAX, 1),
      ack: (messages) => this.ack(groups.latency, messages),
    });
    return runLatency({
      options,
      window,
      probe,
      send: (scheduledMs) => {
        // the probe's stamp is binary: it travels as base64 text (the protocol's bodies are text)
        const body = LatencyProbe.body(options.bodyBytes, scheduledMs).toString('base64');
        this.client.publish(topic, body).then(
          () => window.release(1),
          (error: Error) => window.fail(error),
        );
      },
      stop,
    });
  }

  async teardown(): Promise<void> {
    try {
      await this.resources.delete();
    } finally {
      this.client.close();
      this.admin.close();
    }
  }

  private ack(group: string, messages: readonly MqConsumed[]): Promise<unknown> {
    return this.client.ack(
      this.resources.topic,
      group,
      messages.map((m) => m.receiptHandle),
    );
  }
}

export function createWharfMqHttpDriver(config: Record<string, unknown>): PeerDriver {
  return new WharfMqHttpDriver(config);
}
