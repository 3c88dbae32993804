// Check-back offers that reached the gateway after their call had answered: a wait parked on
// several brokers answers with the first broker's offers, and another broker's that come a moment
// later cannot be taken back (an offer counts against its half message's check limit whether or
// not the producer sees it). They are kept here and handed to the next check of the topic on this
// gateway, until shortly before their half message would be offered again anyway.
import type { CheckedMessage } from '../model/index.js';

/** Offers kept at most, all topics together; past it the oldest go (offered again later). */
export const MAX_LATE_OFFERS = 1000;
/** How long an offer from a broker that does not say its next check time is kept. */
const DEFAULT_KEEP_MS = 5_000;
/** Handed out no later than this before the offer's next check time (or half the time left). */
const MARGIN_MS = 500;

interface Held {
  offer: CheckedMessage;
  untilMs: number;
}

export class LateOffers {
  private readonly byTopic = new Map<string, Held[]>();
  private count = 0;

  put(topicKey: string, offers: readonly CheckedMessage[], now = Date.now()): void {
    let held = this.byTopic.get(topicKey);
    if (held === undefined) {
      held = [];
      this.byTopic.set(topicKey, held);
    }
    for (const offer of offers) {
      // kept until shortly before the broker offers it again (half the time left when that is
      // soon: a check delay of a few hundred milliseconds)
      const next = offer.nextCheckTime ?? now + DEFAULT_KEEP_MS;
      const untilMs = next - Math.min(MARGIN_MS, (next - now) / 2);
      if (untilMs <= now) continue;
      held.push({ offer, untilMs });
      this.count++;
    }
    while (this.count > MAX_LATE_OFFERS) this.dropOldest();
  }

  /** At most `max` offers of the topic still worth handing out, oldest first. */
  take(topicKey: string, max: number, now = Date.now()): CheckedMessage[] {
    const held = this.byTopic.get(topicKey);
    if (held === undefined) return [];
    const live = held.filter((h) => h.untilMs > now);
    const taken = live.slice(0, Math.max(0, max)).map((h) => h.offer);
    const kept = live.slice(taken.length);
    this.count -= held.length - kept.length;
    if (kept.length === 0) this.byTopic.delete(topicKey);
    else this.byTopic.set(topicKey, kept);
    return taken;
  }

  private dropOldest(): void {
    const [key, held] = this.byTopic.entries().next().value as [string, Held[]];
    held.shift();
    this.count--;
    if (held.length === 0) this.byTopic.delete(key);
  }
}
