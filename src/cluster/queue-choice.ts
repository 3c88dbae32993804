// Which queue a published message goes to in a cluster, decided by the gateway so that the queue
// decides the broker. Pure: the placement (broker per queue) and which brokers are up come in.
// A sharding key picks its queue by hash (the broker's own rule, so FIFO order holds across the
// all-in-one and the cluster); a dedupId does too, so that a repeat reaches the broker that
// remembers it; FIFO without a key takes queue 0; everything else goes round robin over the
// queues whose broker is up. NORMAL and DELAY fail over: a keyed queue whose broker is down is
// replaced by an up one (the key then only spreads load). FIFO and TRANSACTION never move.
import { shardingHash } from '../protocol/index.js';
import type { PublishMessage, TopicDescriptor } from '../model/index.js';

/** The queue for one message, or `{ down: queueId }` when its queue must wait for its broker. */
export type QueueChoice = { queueId: number } | { down: number };

export function canFailOver(topic: Pick<TopicDescriptor, 'messageType'>): boolean {
  return topic.messageType === 'NORMAL' || topic.messageType === 'DELAY';
}

/** The queue a message is bound to by its key, or null when any queue will do. */
export function keyedQueue(
  topic: Pick<TopicDescriptor, 'messageType' | 'queueCount'>,
  message: Pick<PublishMessage, 'shardingKey' | 'dedupId'>,
): number | null {
  if (message.shardingKey !== undefined)
    return shardingHash(message.shardingKey) % topic.queueCount;
  if (topic.messageType === 'FIFO') return 0;
  if (message.dedupId !== undefined) return shardingHash(message.dedupId) % topic.queueCount;
  return null;
}

/**
 * Queues for a batch: keyed messages by key, the others all on one queue taken round robin
 * (`turn`) among the queues whose broker `isUp` (one broker call for them).
 */
export function chooseQueues(
  topic: Pick<TopicDescriptor, 'messageType' | 'queueCount'>,
  placement: readonly number[],
  messages: readonly Pick<PublishMessage, 'shardingKey' | 'dedupId'>[],
  isUp: (brokerId: number) => boolean,
  turn: number,
  /** Per message, a queue to use instead of its keyed one while that queue's broker is up (where
   *  a repeat's first went when its keyed broker was down). */
  redirects: readonly (number | undefined)[] = [],
): QueueChoice[] {
  const upQueues: number[] = [];
  placement.forEach((brokerId, queueId) => {
    if (isUp(brokerId)) upQueues.push(queueId);
  });
  const spare = (): QueueChoice =>
    upQueues.length === 0 ? { down: -1 } : { queueId: upQueues[turn % upQueues.length] };
  const free = spare();
  return messages.map((message, k) => {
    const redirect = redirects[k];
    if (redirect !== undefined && redirect < placement.length && isUp(placement[redirect]))
      return { queueId: redirect };
    const keyed = keyedQueue(topic, message);
    if (keyed === null) return free;
    if (isUp(placement[keyed])) return { queueId: keyed };
    return canFailOver(topic) && upQueues.length > 0 ? free : { down: keyed };
  });
}
