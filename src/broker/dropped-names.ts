// The incarnations of groups and topics this broker dropped, so that a call carrying a
// descriptor read before the drop (a gateway's cached metadata, a call resolved just before the
// delete) is refused with GroupNotFound or TopicNotFound instead of making state again under
// the dropped name: a receive would start a new cursor there and deliver everything since the
// old group's creation again, a publish would store a message that a topic created again under
// the name then holds, and a group or topic created again would take over either. One created
// again has a new incarnation (a group's `incarnation`, a topic's `createdAt`) and is not
// affected, nor one dropped before another incarnation of the name. In memory and bounded (the
// oldest drop forgotten first): the race it closes lasts as long as a metadata cache entry.
import { WharfError } from '../errors.js';
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';
import { groupKey, incarnationOf, storeTopic } from './names.js';

/** Drops remembered at most (a Set entry each). */
const DEFAULT_MAX_ENTRIES = 10_000;

type GroupIdentity = Pick<
  GroupDescriptor,
  'tenantId' | 'instanceId' | 'group' | 'incarnation' | 'createdAt'
>;
type TopicIdentity = Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic' | 'createdAt'>;

export class DroppedNames {
  /** `g|t` + name + `\0` + incarnation of each drop, in drop order */
  private readonly dropped = new Set<string>();

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  addGroup(group: GroupIdentity): void {
    this.add(groupEntry(group));
  }

  addTopic(topic: TopicIdentity): void {
    this.add(topicEntry(topic));
  }

  /** Throws GroupNotFound when `group` is an incarnation this broker dropped. */
  checkGroup(group: GroupIdentity): void {
    if (this.dropped.size > 0 && this.dropped.has(groupEntry(group))) {
      throw new WharfError('GroupNotFound', `group ${group.group} was deleted`);
    }
  }

  /** Throws TopicNotFound or GroupNotFound when either is an incarnation dropped here. */
  check(topic: TopicIdentity, group: GroupIdentity): void {
    this.checkTopic(topic);
    this.checkGroup(group);
  }

  /** Throws TopicNotFound when `topic` is an incarnation this broker dropped. */
  checkTopic(topic: TopicIdentity): void {
    if (this.dropped.size > 0 && this.dropped.has(topicEntry(topic))) {
      throw new WharfError('TopicNotFound', `topic ${topic.topic} was deleted`);
    }
  }

  private add(entry: string): void {
    this.dropped.delete(entry); // re-inserted last: the newest drop is forgotten last
    this.dropped.add(entry);
    if (this.dropped.size > this.maxEntries) {
      const oldest = this.dropped.values().next();
      if (oldest.done !== true) this.dropped.delete(oldest.value);
    }
  }
}

function groupEntry(group: GroupIdentity): string {
  return `g${groupKey(group)}\0${incarnationOf(group)}`;
}

function topicEntry(topic: TopicIdentity): string {
  return `t${storeTopic(topic)}\0${topic.createdAt}`;
}
