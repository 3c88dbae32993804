// Statistics computed on demand: a topic's queues and publish figures, a group's backlog,
// in-flight count, oldest unacked age, rates, retries and dead letters on one topic, and the
// broker-wide figures for metrics. Reads only: nothing here changes consumer state.
import type { GroupStats, TopicStats } from '../cluster/index.js';
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';
import type { BrokerCore } from './broker-core.js';
import type { DeadLetters } from './dead-letters.js';
import { groupKey, RESEND_QUEUE_ID, resendTopic, storeTopic } from './names.js';

export class Stats {
  constructor(
    private readonly core: BrokerCore,
    private readonly deadLetters: DeadLetters,
  ) {}

  topicStats(topic: TopicDescriptor): TopicStats {
    const name = storeTopic(topic);
    const queues = Array.from({ length: topic.queueCount }, (_, queueId) => {
      const offsets = this.core.store.queueOffsets(name, queueId);
      return { queueId, minOffset: offsets.minQueueOffset, maxOffset: offsets.maxQueueOffset };
    });
    const counters = this.core.counters.topic(name);
    const consumingGroups = new Set<string>();
    for (const { group } of this.core.ledger.configurationsOf(name))
      consumingGroups.add(group.group);
    return {
      messagesIn: queues.reduce((sum, queue) => sum + queue.maxOffset, 0),
      bytesIn: counters.bytesIn,
      publishRatePerSecond: counters.publish.perSecond(),
      queues,
      consumingGroups: [...consumingGroups].sort(),
    };
  }

  /** Over every subscription of the group on the topic (one per consumer when broadcasting) and
   *  every queue it reads, the re-send queue included; a group that never received counts from
   *  its creation time. */
  async groupStats(topic: TopicDescriptor, group: GroupDescriptor): Promise<GroupStats> {
    const { store, ledger } = this.core;
    const name = storeTopic(topic);
    const now = Date.now();
    // a broadcasting group's slot 0 is its base (where a new consumer starts), no consumer: it
    // counts only while there is no consumer yet, as what the first one would get
    const all = ledger.subscriptionsOfGroup(groupKey(group), name);
    const consumers =
      group.deliveryMode === 'BROADCASTING' ? all.filter((sub) => sub.consumerSlot > 0) : all;
    const subs = consumers.length > 0 ? consumers : all;
    // a broadcasting consumer to come starts past the re-sends made before it (pop-reader)
    const pastResends = group.deliveryMode === 'BROADCASTING' && consumers.length === 0;
    let backlog = 0;
    let inflight = 0;
    let oldest = Infinity;
    let retries = 0;
    let delivered = 0;
    let acked = 0;
    const queueIds = [...Array.from({ length: topic.queueCount }, (_, i) => i), RESEND_QUEUE_ID];
    for (const sub of subs.length > 0 ? subs : [undefined]) {
      for (const queueId of queueIds) {
        const [queueTopic, storeQueue] =
          queueId === RESEND_QUEUE_ID ? [resendTopic(group, topic.topic), 0] : [name, queueId];
        const { minQueueOffset, maxQueueOffset } = store.queueOffsets(queueTopic, storeQueue);
        const cursor = sub?.cursors.get(queueId);
        // what retention deleted below minQueueOffset is neither backlog nor in flight, although
        // the cursor skips it only at its next read
        inflight += cursor?.inflightFrom(minQueueOffset) ?? 0;
        if (pastResends && queueId === RESEND_QUEUE_ID) continue;
        const ackOffset =
          cursor === undefined
            ? Math.max(
                minQueueOffset,
                await store.queueOffsetByTime(queueTopic, storeQueue, group.createdAt),
              )
            : cursor.firstNotDoneFrom(minQueueOffset);
        if (ackOffset >= maxQueueOffset) continue;
        backlog += maxQueueOffset - ackOffset - (cursor?.doneFrom(ackOffset) ?? 0);
        // the head's store time is in its consume-queue entry: no record read
        const [head] = (await store.queueEntries(queueTopic, storeQueue, ackOffset, 1)).entries;
        if (head !== undefined) oldest = Math.min(oldest, head.storeTimestampMs);
      }
      if (sub !== undefined) {
        retries += sub.retries;
        const counters = this.core.counters.subscription(sub.key);
        delivered += counters.delivered.perSecond(now);
        acked += counters.acked.perSecond(now);
      }
    }
    return {
      backlog,
      inflight,
      oldestUnackedAgeMs: oldest === Infinity ? 0 : Math.max(0, now - oldest),
      deliveredRatePerSecond: delivered,
      ackedRatePerSecond: acked,
      retries,
      deadLetters: this.deadLetters.count(group),
    };
  }

  /** Store and broker figures for metrics. */
  metrics(): Record<string, number> {
    let inflight = 0;
    let subscriptions = 0;
    for (const sub of this.core.ledger.allSubscriptions()) {
      inflight += sub.inflightCount();
      subscriptions++;
    }
    return {
      ...this.core.store.stats(),
      parkedReceives: this.core.longPoll.parkedCount,
      inflight,
      subscriptions,
    };
  }
}
