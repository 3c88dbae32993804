// A broker's watch on a pub/sub channel of its own (publish fences, pending drops): a connection
// of its own (as BrokerDirectory has), subscribed in the background. The announcements are hints
// only — what they announce is kept in a hash the broker also reads on an interval — so a lost
// announcement, a reconnect or a Redis that is down costs a delay, never an operation.
import type { Redis } from 'ioredis';

/** `onMessage` runs on each announcement on `channel` and after each reconnect (what was
 *  announced meanwhile is lost); the returned stop disconnects, subscribed or not, so a Redis
 *  that is down never holds a shutdown. */
export function watchChannel(
  redis: Redis,
  channel: string,
  connectionName: string,
  onMessage: () => void,
): () => void {
  const subscriber = redis.duplicate({ connectionName });
  let subscribed = false;
  subscriber.on('error', () => undefined); // reconnects on its own; the broker's look covers it
  subscriber.on('message', () => onMessage());
  subscriber.on('ready', () => {
    // ioredis subscribes again by itself after a reconnect; the first time is ours
    if (subscribed) onMessage();
    else
      subscriber.subscribe(channel).then(
        () => (subscribed = true),
        () => undefined, // tried again on the next ready
      );
  });
  if (subscriber.status === 'wait') subscriber.connect().catch(() => undefined);
  return () => subscriber.disconnect();
}
