// The incarnations of groups this broker dropped, so that a receive carrying a descriptor read
// before the drop (a gateway's cached metadata, a receive resolved just before the delete) is
// refused with GroupNotFound instead of starting a new cursor under the dropped name: that
// cursor would deliver again everything since the old group's creation, and a group created
// again under the name would inherit it. A group created again has a new incarnation and is not
// affected, nor one dropped before another incarnation of the name. In memory and bounded (the oldest forgotten first): the race it closes lasts as long
// as a metadata cache entry, not across restarts.
import { WharfError } from '../errors.js';
import type { GroupDescriptor } from '../model/index.js';
import { groupKey, incarnationOf } from './names.js';

/** Dropped groups remembered at most (a Map entry each). */
const DEFAULT_MAX_ENTRIES = 10_000;

export class DroppedGroups {
  /** `groupKey\0incarnation` of each dropped group, in drop order */
  private readonly dropped = new Set<string>();

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  /** Remembers `group`'s incarnation as dropped. */
  add(
    group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group' | 'incarnation' | 'createdAt'>,
  ): void {
    const key = keyOf(group);
    this.dropped.delete(key); // re-inserted last: the newest drop is forgotten last
    this.dropped.add(key);
    if (this.dropped.size > this.maxEntries) {
      const oldest = this.dropped.values().next();
      if (oldest.done !== true) this.dropped.delete(oldest.value);
    }
  }

  /** Throws GroupNotFound when `group` is an incarnation this broker dropped. */
  check(group: GroupDescriptor): void {
    if (this.dropped.size > 0 && this.dropped.has(keyOf(group))) {
      throw new WharfError('GroupNotFound', `group ${group.group} was deleted`);
    }
  }
}

function keyOf(
  group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group' | 'incarnation' | 'createdAt'>,
): string {
  return `${groupKey(group)}\0${incarnationOf(group)}`;
}
