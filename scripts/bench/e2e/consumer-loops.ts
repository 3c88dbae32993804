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

/**
 * Consumes into `probe` until the returned stop is called; the probe's binary stamp travels as
 * base64 text. Acks are not awaited, so they do not hold up the next receive.
 */
export function startProbeConsumers<M extends { body: string }>(
  options: ConsumerLoopOptions<M> & { probe: LatencyProbe },
): () => Promise<void> {
  let running = true;
  const consumer = async (): Promise<void> => {
    while (running) {
      const messages = await options.receive();
      for (const message of messages) options.probe.receive(Buffer.from(message.body, 'base64'));
      if (messages.length > 0) void options.ack(messages);
    }
  };
  const consuming = Promise.all(Array.from({ length: options.consumers }, consumer));
  return async () => {
    running = false;
    await consuming;
  };
}
