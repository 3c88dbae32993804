// The consuming side of Wharf's streaming receive for the benches: a few long-lived streams whose
// messages are acked in batches of up to 100 handles (a few ack calls in flight), counted for a
// throughput run or fed to a latency probe.
import type { LatencyProbe } from '../lib/latency-probe.js';
import { type ThroughputResult, throughput } from '../lib/peer-driver.js';
import type { SignedClient } from './signed-client.js';

/** A line of the stream as sent (the body as text). */
export interface StreamedMessage {
  receiptHandle: string;
  body: string;
}

export interface StreamConsumerOptions {
  client: SignedClient;
  /** …/groups/{group} of the topic. */
  groupPath: string;
  streams: number;
  maxOutstanding: number;
  onMessage(message: StreamedMessage): void;
}

const ACK_BATCH = 100;
const ACKS_IN_FLIGHT = 4;

/** Opens the streams; the returned stop hangs them up and waits for the acks sent. */
export function startStreamConsumers(options: StreamConsumerOptions): () => Promise<void> {
  const { client, groupPath } = options;
  const pending: string[] = [];
  let inFlight = 0;
  let failure: Error | undefined;
  const acks = new Set<Promise<unknown>>();
  const flush = (): void => {
    while (inFlight < ACKS_IN_FLIGHT && pending.length > 0) {
      const handles = pending.splice(0, ACK_BATCH);
      inFlight++;
      const ack = client.ok('POST', `${groupPath}/ack`, { receiptHandles: handles }).then(
        () => {
          inFlight--;
          acks.delete(ack);
          flush();
        },
        (error: unknown) => (failure = error instanceof Error ? error : new Error(String(error))),
      );
      acks.add(ack);
    }
  };
  const open = (): { done: Promise<void>; close(): void } =>
    client.stream(
      `${groupPath}/receive-stream`,
      { maxOutstanding: options.maxOutstanding, durationSeconds: 300 },
      (line) => {
        const message = line as Partial<StreamedMessage>;
        if (message.receiptHandle === undefined || message.body === undefined) return; // the end
        options.onMessage({ receiptHandle: message.receiptHandle, body: message.body });
        pending.push(message.receiptHandle);
        if (pending.length >= ACK_BATCH || inFlight === 0) flush();
      },
    );
  const streams = Array.from({ length: options.streams }, open);
  // a batch smaller than ACK_BATCH waits at most this long when acks are in flight
  const timer = setInterval(flush, 2);
  return async () => {
    clearInterval(timer);
    for (const stream of streams) stream.close();
    await Promise.all(streams.map((stream) => stream.done.catch(() => undefined)));
    await Promise.all(acks);
    if (failure !== undefined) throw failure;
  };
}

/** Consumes `messages` through the streams, then stops them. */
export async function streamForThroughput(
  options: Omit<StreamConsumerOptions, 'onMessage'> & { messages: number },
): Promise<ThroughputResult> {
  let received = 0;
  let reached!: () => void;
  const all = new Promise<void>((resolve) => (reached = resolve));
  const startMs = performance.now();
  const stop = startStreamConsumers({
    ...options,
    onMessage: () => {
      if (++received === options.messages) reached();
    },
  });
  await all;
  await stop();
  return throughput(received, performance.now() - startMs, 32);
}

/** Feeds every streamed message's stamp to `probe` until the returned stop is called. */
export function startStreamProbe(
  options: Omit<StreamConsumerOptions, 'onMessage'> & { probe: LatencyProbe },
): () => Promise<void> {
  return startStreamConsumers({
    ...options,
    onMessage: (message) => options.probe.receive(Buffer.from(message.body, 'base64')),
  });
}
