// Queue placement (cluster): which broker holds each queue of a topic, in Redis. A topic's
// queues are placed when a gateway first routes it (at its creation in practice) on the live
// brokers holding the fewest queues; a grown queueCount places the new queues the same way; a
// placed queue never moves (its messages are on that broker's disk). The per-broker load is a
// weight only, kept beside the placements.
import { WharfError } from '../errors.js';
import type { TopicDescriptor } from '../model/index.js';
import type { RepoContext } from './repo-context.js';

/** The script code for "no live broker to place a queue on". */
const NO_LIVE_BROKER = -9;

type TopicName = Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>;

export class QueuePlacements {
  constructor(private readonly ctx: RepoContext) {}

  private key(topic: TopicName): string {
    return this.ctx.keys.placement(topic.tenantId, topic.instanceId, topic.topic);
  }

  /**
   * The broker of each queue (index = queueId), placing the queues that have none on
   * `liveBrokerIds`. Unavailable when a queue needs a broker and none is live.
   */
  async place(
    topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic' | 'queueCount'>,
    liveBrokerIds: readonly number[],
  ): Promise<number[]> {
    const loads = await this.ctx.redis.hgetall(this.ctx.keys.brokerLoad());
    const args: (string | number)[] = [topic.queueCount];
    // the least loaded first: the script's tie goes to the first listed
    const ordered = [...liveBrokerIds].sort(
      (a, b) => Number(loads[a] ?? 0) - Number(loads[b] ?? 0) || a - b,
    );
    for (const id of ordered) args.push(id, Number(loads[id] ?? 0));
    const answer = await this.ctx.scripts.run('place-queues', [this.key(topic)], args);
    if (answer === NO_LIVE_BROKER) {
      throw new WharfError('Unavailable', 'no live broker to place the topic’s queues on', {
        retryAfterMs: 1000,
      });
    }
    if (!Array.isArray(answer) || !answer.every((x) => typeof x === 'number')) {
      throw new WharfError('Internal', 'place-queues answered an unexpected value');
    }
    const numbers = answer;
    const placed = numbers.slice(topic.queueCount);
    if (placed.length > 0) {
      const load = this.ctx.keys.brokerLoad();
      const pipeline = this.ctx.redis.pipeline();
      for (const id of placed) pipeline.hincrby(load, String(id), 1);
      await pipeline.exec();
    }
    return numbers.slice(0, topic.queueCount);
  }

  /** Forgets a deleted topic's placement (and its weight on its brokers). */
  async drop(topic: TopicName): Promise<void> {
    const key = this.key(topic);
    const placement = await this.ctx.redis.hgetall(key);
    await this.ctx.redis.del(key);
    const values = Object.values(placement);
    if (values.length === 0) return;
    const pipeline = this.ctx.redis.pipeline();
    for (const id of values) pipeline.hincrby(this.ctx.keys.brokerLoad(), id, -1);
    await pipeline.exec();
  }
}
