// The consuming side the Wharf drivers share, whatever protocol they speak: concurrent long-poll
// consumers that ack each batch as soon as it arrives, counted for a throughput run or fed to a
// latency probe. A driver supplies one receive (a batch, [] when the wait ran out) and one ack.
import type { LatencyProbe } from '../lib/latency-probe.js';
import { type ThroughputResult, throughput } from '../lib/peer-driver.js';

export interface ConsumerLoopOptions<M> {
  consumers: number;
  receive: () => Promise<readonly M[]>;
  ack: (messages: readonly M[]) => Promise<unknown>;
}

/** Consumes until `messages` are in, then waits for every ack; `batch` is the receive size. */
export async function consumeForThroughput<M>(
  options: ConsumerLoopOptions<M> & { messages: number; batch: number },
): Promise<ThroughputResult> {
  let received = 0;
  const acks: Promise<unknown>[] = [];
  const startMs = performance.now();
  const consumer = async (): Promise<void> => {
    while (received < options.messages) {
      const messages = await options.receive();
      if (messages.length === 0) continue;
      received += messages.length;
      acks.push(options.ack(messages));
    }
  };
  await Promise.all(Array.from({ length: options.consumers }, consumer));
  await Promise.all(acks);
  return throughput(received, performance.now() - startMs, options.batch);
}

/** How long the probe consumers hold a partial ack batch at most (`ackBatch` > 1). */
const ACK_LINGER_MS = 100;

/**
 * Consumes into `probe` until the returned stop is called; the probe's binary stamp travels as
 * base64 text. Acks are not awaited, so they do not hold up the next receive. With `ackBatch`
 * > 1 the consumers' messages are acked together, `ackBatch` a call (as the RabbitMQ driver acks
 * `multiple` every 32 deliveries), and what waits is sent after ACK_LINGER_MS at most and at stop.
 */
export function startProbeConsumers<M extends { body: string }>(
  options: ConsumerLoopOptions<M> & { probe: LatencyProbe; ackBatch?: number },
): () => Promise<void> {
  let running = true;
  const ackBatch = options.ackBatch ?? 1;
  let pending: M[] = [];
  let timer: NodeJS.Timeout | undefined;
  const acks = new Set<Promise<unknown>>();
  const send = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const ack = options.ack(batch).finally(() => acks.delete(ack));
    acks.add(ack);
  };
  const consumer = async (): Promise<void> => {
    while (running) {
      const messages = await options.receive();
      for (const message of messages) options.probe.receive(Buffer.from(message.body, 'base64'));
      if (messages.length === 0) continue;
      pending.push(...messages);
      if (pending.length >= ackBatch) send();
      else timer ??= setTimeout(send, ACK_LINGER_MS);
    }
  };
  const consuming = Promise.all(Array.from({ length: options.consumers }, consumer));
  return async () => {
    running = false;
    try {
      await consuming;
    } finally {
      send(); // and its timer cleared, a receive failed or not
    }
    await Promise.all(acks);
  };
}
