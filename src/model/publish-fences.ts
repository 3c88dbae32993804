// Publish fences (cluster failover): what a gateway leaves for a broker whose publish call it
// gave up on, and how a broker reads its own. The gateway writes them (meta/publish-fences.ts);
// the broker applies them (broker/publish-fences.ts).
import type { TopicDescriptor } from './descriptors.js';

export interface PublishFence {
  /** The gateway's call id, stored with each message of the call (PublishMessage.requestId). */
  requestId: string;
  topic: TopicDescriptor;
  /** The queues the call's messages were for. */
  queueIds: number[];
  /** When the gateway sent the call (its clock). */
  sentAtMs: number;
}

/** Where a broker finds its fences. */
export interface PublishFenceSource {
  /** Up to `max` fences left for this broker. */
  /** Up to `max` fences, and the ids of records this version cannot read (left where they are,
   *  reported, never applied: one holds up no other). */
  pending(max: number): Promise<{ fences: PublishFence[]; unreadable: string[] }>;
  /** These fences are applied: forget them. */
  done(requestIds: readonly string[]): Promise<void>;
  /** Calls `onFence` soon after a fence is left for this broker (and after a reconnect, for
   *  those left meanwhile), until the returned stop is called. A push can be missed: the broker
   *  still looks every fenceIntervalMs. Optional: without it the broker only looks. */
  watch?(onFence: () => void): () => void;
}

/** Where a gateway leaves a fence for a broker. */
export interface PublishFenceSink {
  add(brokerId: number, fence: PublishFence): Promise<void>;
}

/** The topic a dedupId belongs to. */
export type DedupScope = Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>;

/** A topic's name among a broker's dedup marks: `tenantId/instanceId/topic`. */
export function dedupScopeKey(scope: DedupScope): string {
  return `${scope.tenantId}/${scope.instanceId}/${scope.topic}`;
}

/**
 * Keyed publishes (a dedupId) moved off their queue's broker while it was down: a repeat of one
 * made after the broker is back must go where the first was stored, or it is stored again (the
 * broker it hashes to never saw the first).
 */
export interface DedupRedirects {
  /** Remembers, for `windowMs`, that these dedupIds bound to a queue of `brokerId` were sent
   *  to `queueId`. */
  moved(
    brokerId: number,
    scope: DedupScope,
    moves: readonly { dedupId: string; queueId: number }[],
    windowMs: number,
  ): Promise<void>;
  /** Per topic (`tenantId/instanceId/topic`), until when (epoch ms) moves off `brokerId` are
   *  remembered. */
  movedUntil(brokerId: number): Promise<Map<string, number>>;
  /** The queue each dedupId was moved to, or null. */
  lookup(
    brokerId: number,
    scope: DedupScope,
    dedupIds: readonly string[],
  ): Promise<(number | null)[]>;
}
