// Wharf over its public HTTP API, as a PeerDriver: SigV4-signed publishes of `batch` messages a
// call with a window of messages in flight, long-poll receives of 32 by concurrent consumers
// with acks sent as soon as a batch arrives, and a paced latency run (one message a publish, as
// the peers publish one at a time) with its own group so it starts empty.
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
import { SignedClient } from './signed-client.js';
import { startStreamProbe, streamForThroughput } from './stream-consumers.js';

/** Publish calls in flight at most during the latency run. */
const LATENCY_REQUESTS = 4;
/** Long-poll receivers of the latency run, and how many of their messages an ack call carries
 *  (the RabbitMQ driver acks `multiple` every 32; a partial batch waits 100 ms at most). */
const LATENCY_CONSUMERS = 4;
const LATENCY_ACK_BATCH = 32;
/** maxOutstanding of each receive stream (the rows with `streams`). */
const STREAM_OUTSTANDING = 512;

interface ReceivedMessage {
  receiptHandle: string;
  body: string;
  bodyEncoding: string;
}

export class WharfHttpDriver implements PeerDriver {
  readonly name: string;
  readonly durable: string;
  private readonly client: SignedClient;
  private readonly window: number;
  private readonly consumers: number;
  /** Said after the mode (what this row changes: trace off, a small body). */
  private readonly note: string;
  /** Streaming receives to consume with (0: the plain receive route). */
  private readonly streams: number;
  private readonly base: string;
  private readonly resources: BenchResources;

  constructor(config: Record<string, unknown>) {
    // another server of the same routes (the http-floor row) says what it is
    this.name = configString(config, 'name', 'Wharf (HTTP, SigV4)');
    this.durable = configString(config, 'durable', 'yes (fdatasync)');
    this.window = configNumber(config, 'window', 2048);
    this.consumers = configNumber(config, 'consumers', 16);
    this.note = configString(config, 'note', '');
    this.streams = configNumber(config, 'streams', 0);
    this.base = `/v1/instances/${configString(config, 'instanceId', '')}`;
    this.client = new SignedClient({
      url: configString(config, 'url', 'http://127.0.0.1:8080'),
      accessKeyId: configString(config, 'accessKeyId', ''),
      accessKeySecret: configString(config, 'accessKeySecret', ''),
      region: configString(config, 'region', 'local'),
      maxSockets: Math.max(64, this.consumers * 2),
    });
    this.resources = new BenchResources(this.client, this.base);
  }

  get mode(): string {
    const consume =
      this.streams > 0
        ? `${this.streams} receive streams × ${STREAM_OUTSTANDING} outstanding, acks × 100`
        : `${this.consumers} receivers × 32 + ack (latency: ${LATENCY_CONSUMERS}, acks ×${LATENCY_ACK_BATCH})`;
    const mode = `sync flush, publish ${this.window / 32} calls × 32 in flight, ${consume}`;
    return this.note === '' ? mode : `${mode}; ${this.note}`;
  }

  setup(): Promise<void> {
    return this.resources.create();
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const windowSize = Math.max(options.window ?? this.window, options.batch);
    const window = new SendWindow(windowSize);
    const body = 'a'.repeat(options.bodyBytes);
    const path = `${this.base}/topics/${this.resources.topic}/messages`;
    const startMs = performance.now();
    for (let sent = 0; sent < options.messages;) {
      const count = Math.min(options.batch, options.messages - sent);
      const wait = window.acquire(count);
      if (wait !== undefined) await wait;
      const payload = { messages: Array.from({ length: count }, () => ({ body })) };
      this.client.ok('POST', path, payload, `publish-${count}`).then(
        () => window.release(count),
        (error: Error) => window.fail(error),
      );
      sent += count;
    }
    await window.idle();
    return throughput(options.messages, performance.now() - startMs, windowSize);
  }

  consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    if (this.streams > 0) {
      return streamForThroughput({
        client: this.client,
        groupPath: this.groupPath(this.resources.groups.throughput),
        streams: this.streams,
        maxOutstanding: STREAM_OUTSTANDING,
        messages: options.messages,
      });
    }
    const max = Math.min(32, options.batch ?? 32);
    return consumeForThroughput({
      consumers: this.consumers,
      messages: options.messages,
      batch: max,
      receive: () => this.receive(this.resources.groups.throughput, max, 1),
      ack: (messages) => this.ack(this.resources.groups.throughput, messages),
    });
  }

  async latency(options: LatencyOptions): Promise<LatencyResult> {
    await this.resources.createLatencyGroup();
    const probe = new LatencyProbe();
    const window = new SendWindow(256);
    const stop =
      this.streams > 0
        ? startStreamProbe({
            client: this.client,
            groupPath: this.groupPath(this.resources.groups.latency),
            streams: this.streams,
            maxOutstanding: STREAM_OUTSTANDING,
            probe,
          })
        : startProbeConsumers({
            consumers: LATENCY_CONSUMERS,
            ackBatch: LATENCY_ACK_BATCH,
            probe,
            receive: () => this.receive(this.resources.groups.latency, 32, 1),
            ack: (messages) => this.ack(this.resources.groups.latency, messages),
          });
    const path = `${this.base}/topics/${this.resources.topic}/messages`;
    // A producer over HTTP coalesces what is scheduled while its requests are in flight (at most
    // LATENCY_REQUESTS of them) into the next request, up to 32 messages: no added linger, one
    // call a message when the server keeps up, fewer and fuller calls when it does not.
    let inFlight = 0;
    const queued: { body: string; bodyEncoding: 'base64' }[] = [];
    const flush = (): void => {
      while (inFlight < LATENCY_REQUESTS && queued.length > 0) {
        const messages = queued.splice(0, 32);
        inFlight++;
        this.client.ok('POST', path, { messages }).then(
          () => {
            inFlight--;
            window.release(messages.length);
            flush();
          },
          (error: Error) => window.fail(error),
        );
      }
    };
    return runLatency({
      options,
      window,
      probe,
      send: (scheduledMs) => {
        queued.push({
          body: LatencyProbe.body(options.bodyBytes, scheduledMs).toString('base64'),
          bodyEncoding: 'base64',
        });
        flush();
      },
      stop,
    });
  }

  async teardown(): Promise<void> {
    try {
      await this.resources.delete();
    } finally {
      this.client.close();
    }
  }

  private groupPath(group: string): string {
    return `${this.base}/topics/${this.resources.topic}/groups/${group}`;
  }

  private async receive(
    group: string,
    maxMessages: number,
    waitSeconds: number,
  ): Promise<ReceivedMessage[]> {
    const body = (await this.client.ok(
      'POST',
      `${this.base}/topics/${this.resources.topic}/groups/${group}/receive`,
      { maxMessages, waitSeconds },
      `receive-${group}-${maxMessages}-${waitSeconds}`,
    )) as { messages: ReceivedMessage[] };
    return body.messages;
  }

  private ack(group: string, messages: readonly ReceivedMessage[]): Promise<unknown> {
    return this.client.ok(
      'POST',
      `${this.base}/topics/${this.resources.topic}/groups/${group}/ack`,
      {
        receiptHandles: messages.map((message) => message.receiptHandle),
      },
    );
  }
}

export function createWharfHttpDriver(config: Record<string, unknown>): PeerDriver {
  return new WharfHttpDriver(config);
}
