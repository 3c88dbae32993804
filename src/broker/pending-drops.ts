// Pending drops: a topic, group or instance deleted while this broker was down (or did not answer
// the drop) is left for it in Redis by the gateway (meta/pending-drops.ts). This broker applies
// each one to itself — the same dropTopic, dropGroup or dropInstance the gateway's call would have
// run — when it starts (before it serves: a name created again must not meet the deleted one's
// messages, delayed and half messages, cursors or internal topics), as each is announced while it
// runs, and every second in case an announcement was missed. Then the drop is removed; a crash
// between the two applies it again at the next start, which finds nothing left to drop.
import {
  describeDrop,
  type GroupDescriptor,
  type PendingDrop,
  type PendingDropSource,
  type TopicDescriptor,
} from '../model/index.js';
import type { BrokerLogger } from './broker-logger.js';

/** Drops applied per round. */
const DROPS_PER_ROUND = 100;

/** What a drop runs on: the broker itself. */
export interface Droppable {
  dropTopic(topic: TopicDescriptor): Promise<void>;
  dropGroup(group: GroupDescriptor): Promise<void>;
  dropInstance(tenantId: string, instanceId: string): Promise<void>;
}

export class PendingDrops {
  /** Drops applied since start (tests). */
  applied = 0;

  constructor(
    private readonly source: PendingDropSource,
    private readonly target: Droppable,
    private readonly logger: BrokerLogger,
  ) {}

  /** Applies the drops waiting now; resolves with how many were applied. A drop that fails (a
   *  full disk refusing the journal) stays for the next round and holds up no other. */
  async applyPending(): Promise<number> {
    const { drops, unreadable } = await this.source.pending(DROPS_PER_ROUND);
    if (unreadable.length > 0) {
      this.logger.error(
        { dropIds: unreadable.slice(0, 10), count: unreadable.length, key: 'pending drops' },
        'pending drops this broker cannot read (a newer gateway wrote them?): not applied',
      );
    }
    const applied: PendingDrop[] = [];
    for (const drop of drops) {
      try {
        await this.apply(drop);
        applied.push(drop);
      } catch (error) {
        this.logger.warn(
          { err: error, drop: describeDrop(drop) },
          'pending drop not applied: trying again next round',
        );
      }
    }
    if (applied.length === 0) return 0;
    await this.source.done(applied);
    this.applied += applied.length;
    this.logger.info(
      { drops: applied.slice(0, 10).map(describeDrop), count: applied.length },
      'applied drops of topics, groups or instances deleted while this broker was down',
    );
    return applied.length;
  }

  private apply(drop: PendingDrop): Promise<void> {
    switch (drop.kind) {
      case 'topic':
        return this.target.dropTopic(drop.topic);
      case 'group':
        return this.target.dropGroup(drop.group);
      case 'instance':
        return this.target.dropInstance(drop.tenantId, drop.instanceId);
    }
  }
}
