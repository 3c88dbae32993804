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
  uniqueName,
} from '../lib/peer-driver.js';
import { SendWindow } from '../lib/send-window.js';
import { SignedClient } from './signed-client.js';

/** Publish calls in flight at most during the latency run. */
const LATENCY_REQUESTS = 4;

interface ReceivedMessage {
  receiptHandle: string;
  body: string;
  bodyEncoding: string;
}

export class WharfHttpDriver implements PeerDriver {
  readonly name = 'Wharf (HTTP, SigV4)';
  readonly durable = 'yes (fdatasync)';
  private readonly client: SignedClient;
  private readonly window: number;
  private readonly consumers: number;
  private readonly base: string;

  constructor(config: Record<string, unknown>) {
    this.window = configNumber(config, 'window', 2048);
    this.consumers = configNumber(config, 'consumers', 16);
    this.base = `/v1/instances/${configString(config, 'instanceId', '')}`;
    this.client = new SignedClient({
      url: configString(config, 'url', 'http://127.0.0.1:8080'),
      accessKeyId: configString(config, 'accessKeyId', ''),
      accessKeySecret: configString(config, 'accessKeySecret', ''),
      region: configString(config, 'region', 'local'),
      maxSockets: Math.max(64, this.consumers * 2),
    });
  }

  get mode(): string {
    return `sync flush, publish ${this.window / 32} calls × 32 in flight, ${this.consumers} receivers × 32 + ack`;
  }

  /** This run's topic and groups: new names each run, so no run sees another's messages. */
  private readonly topic = uniqueName('bench');
  private readonly groups = {
    throughput: uniqueName('throughput'),
    latency: uniqueName('latency'),
  };

  async setup(): Promise<void> {
    await this.client.ok('PUT', `${this.base}/topics/${this.topic}`, {
      messageType: 'NORMAL',
      queueCount: 8,
    });
    await this.client.ok('PUT', `${this.base}/groups/${this.groups.throughput}`, {
      invisibleSeconds: 60,
    });
  }

  async publishThroughput(options: PublishOptions): Promise<ThroughputResult> {
    const windowSize = Math.max(options.window ?? this.window, options.batch);
    const window = new SendWindow(windowSize);
    const body = 'a'.repeat(options.bodyBytes);
    const path = `${this.base}/topics/${this.topic}/messages`;
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

  async consumeThroughput(options: ConsumeOptions): Promise<ThroughputResult> {
    const max = Math.min(32, options.batch ?? 32);
    let received = 0;
    const acks: Promise<unknown>[] = [];
    const startMs = performance.now();
    const consumer = async (): Promise<void> => {
      while (received < options.messages) {
        const messages = await this.receive(this.groups.throughput, max, 1);
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
    // a group created now starts after the throughput backlog (API.md: a group reads what is
    // stored after its creation)
    await this.client.ok('PUT', `${this.base}/groups/${this.groups.latency}`, {
      invisibleSeconds: 60,
    });
    const probe = new LatencyProbe();
    const window = new SendWindow(256);
    let running = true;
    const consumer = async (): Promise<void> => {
      while (running) {
        const messages = await this.receive(this.groups.latency, 32, 1);
        for (const message of messages) probe.receive(Buffer.from(message.body, 'base64'));
        if (messages.length > 0) void this.ack(this.groups.latency, messages);
      }
    };
    const consuming = Promise.all(Array.from({ length: 4 }, consumer));
    const path = `${this.base}/topics/${this.topic}/messages`;
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
      stop: async () => {
        running = false;
        await consuming;
      },
    });
  }

  async teardown(): Promise<void> {
    try {
      await this.client.request('DELETE', `${this.base}/topics/${this.topic}`);
      for (const group of Object.values(this.groups)) {
        await this.client.request('DELETE', `${this.base}/groups/${group}`);
      }
    } finally {
      this.client.close();
    }
  }

  private async receive(
    group: string,
    maxMessages: number,
    waitSeconds: number,
  ): Promise<ReceivedMessage[]> {
    const body = (await this.client.ok(
      'POST',
      `${this.base}/topics/${this.topic}/groups/${group}/receive`,
      { maxMessages, waitSeconds },
      `receive-${group}-${maxMessages}-${waitSeconds}`,
    )) as { messages: ReceivedMessage[] };
    return body.messages;
  }

  private ack(group: string, messages: readonly ReceivedMessage[]): Promise<unknown> {
    return this.client.ok('POST', `${this.base}/topics/${this.topic}/groups/${group}/ack`, {
      receiptHandles: messages.map((message) => message.receiptHandle),
    });
  }
}

export function createWharfHttpDriver(config: Record<string, unknown>): PeerDriver {
  return new WharfHttpDriver(config);
}
