// Counters kept in memory per store topic (publish rate, bytes in) and per subscription (deliver
// and ack rates). Only bytes in survive a restart (in the broker snapshot, written within the
// snapshot interval of a change, so a crash loses at most that much of it); rates start over.
import { RateCounter } from './rate-counter.js';

export interface TopicCounters {
  publish: RateCounter;
  bytesIn: number;
}

export interface SubscriptionCounters {
  delivered: RateCounter;
  acked: RateCounter;
}

export class Counters {
  private readonly topics = new Map<string, TopicCounters>();
  private readonly subscriptions = new Map<string, SubscriptionCounters>();

  topic(storeTopic: string): TopicCounters {
    let counters = this.topics.get(storeTopic);
    if (counters === undefined) {
      counters = { publish: new RateCounter(), bytesIn: 0 };
      this.topics.set(storeTopic, counters);
    }
    return counters;
  }

  subscription(subscriptionKey: string): SubscriptionCounters {
    let counters = this.subscriptions.get(subscriptionKey);
    if (counters === undefined) {
      counters = { delivered: new RateCounter(), acked: new RateCounter() };
      this.subscriptions.set(subscriptionKey, counters);
    }
    return counters;
  }

  forgetTopic(storeTopic: string): void {
    this.topics.delete(storeTopic);
  }

  /** Drops the counters of subscriptions that no longer exist (after a drop of group or topic). */
  forgetSubscriptionsExcept(exists: (subscriptionKey: string) => boolean): void {
    for (const key of [...this.subscriptions.keys()])
      if (!exists(key)) this.subscriptions.delete(key);
  }

  /** [storeTopic, bytesIn] of every topic (the snapshot keeps them). */
  bytesIn(): [string, number][] {
    return [...this.topics].map(([name, counters]) => [name, counters.bytesIn]);
  }

  /** Bytes in of every topic together: tells the snapshot timer whether they changed. */
  totalBytesIn(): number {
    let total = 0;
    for (const counters of this.topics.values()) total += counters.bytesIn;
    return total;
  }

  restoreBytesIn(pairs: readonly (readonly [string, number])[]): void {
    for (const [name, bytes] of pairs) this.topic(name).bytesIn = bytes;
  }
}
