// Internal names: how the broker names tenants' topics and its own system topics in the store,
// the scopes that ids and handles are sealed to, and the reserved property and key names it
// keeps inside records. User names match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, so the `%` of system
// topics and the \u0001 prefix of system properties can never collide with them.
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';

/** Queue id under which a group's re-sent dead letters are received (beside the topic's queues). */
export const RESEND_QUEUE_ID = 0xffff;

export function storeTopic(
  topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>,
): string {
  return `${topic.tenantId}/${topic.instanceId}/${topic.topic}`;
}

/** The tenant of any store topic name of a tenant (its first segment: storeTopic and the
 *  system topics below all start with it). */
export function tenantOfStoreTopic(name: string): string {
  const slash = name.indexOf('/');
  return slash < 0 ? name : name.slice(0, slash);
}

export function groupKey(
  group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
): string {
  return `${group.tenantId}/${group.instanceId}/${group.group}`;
}

/** A group's dead-letter queue (queue 0), like RocketMQ's %DLQ%<group>. */
export function deadLetterTopic(
  group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
): string {
  return `${group.tenantId}/${group.instanceId}/%DLQ%/${group.group}`;
}

/** deadLetterTopic from a group key (tenant/instance/group). */
export function deadLetterTopicOf(groupKeyName: string): string {
  const [tenantId = '', instanceId = '', group = ''] = groupKeyName.split('/');
  return deadLetterTopic({ tenantId, instanceId, group });
}

/** Where dead letters re-sent to a group for one topic wait (queue 0), like RocketMQ's %RETRY%. */
export function resendTopic(
  group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
  topic: string,
): string {
  return `${group.tenantId}/${group.instanceId}/%RETRY%/${group.group}/${topic}`;
}

/** Where a TRANSACTION topic's half messages wait for their decision (queue = the target
 *  queue chosen at publish), like RocketMQ's RMQ_SYS_TRANS_HALF_TOPIC but per topic. */
export function halfTopic(
  topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>,
): string {
  return `${topic.tenantId}/${topic.instanceId}/%HALF%/${topic.topic}`;
}

/** The store topic a half topic's messages are committed to, or null for another name. */
export function targetOfHalfTopic(name: string): string | null {
  const parts = name.split('/');
  if (parts.length !== 4 || parts[2] !== '%HALF%') return null;
  return `${parts[0]}/${parts[1]}/${parts[3]}`;
}

/** Scope a transaction id is sealed to: the topic, apart from its message ids. */
export function transactionScope(
  topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>,
): string {
  return `${storeTopic(topic)}/%TXN%`;
}

/** Scope a message id is sealed to: the topic. */
export function messageScope(
  topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>,
): string {
  return storeTopic(topic);
}

/** Scope a receipt handle is sealed to: the topic and its incarnation (a topic created again
 *  under its name starts its queues at offset 0 again: an old handle must not name a new
 *  message), the group and the group's incarnation. */
export function receiptScope(topic: TopicDescriptor, group: GroupDescriptor): string {
  return `${storeTopic(topic)}@t${topic.createdAt}/${group.group}@${incarnationOf(group)}`;
}

/** The group's incarnation; groups stored before incarnations existed use their createdAt. */
export function incarnationOf(group: Pick<GroupDescriptor, 'incarnation' | 'createdAt'>): string {
  return group.incarnation ?? `t${group.createdAt}`;
}

/** Reserved property names (never shown to users). */
export const SystemProperty = {
  /** 'b' when the body was published base64 (absent: utf8). */
  bodyEncoding: '\u0001enc',
  shardingKey: '\u0001sk',
  /** On copies (dead letters, re-sends): the original message id. */
  messageId: '\u0001mid',
  /** On copies: the original (user) topic name, queue id and queue offset. */
  originTopic: '\u0001topic',
  originQueueId: '\u0001qid',
  originQueueOffset: '\u0001qoff',
  originPublishTime: '\u0001pt',
  /** On a BROADCASTING group's dead letter: the consumer slots whose deliveries it ended
   *  (comma-separated; one dead letter of a message per group names them all). */
  deadLetteredBy: '\u0001dlby',
  /** On a delayed message's copy: the time it was due (ms), its publish's deliverAt. */
  deliverAt: '\u0001dat',
  /** The cluster gateway's call id (PublishMessage.requestId): publish fences find it by this. */
  requestId: '\u0001rid',
} as const;

const SYSTEM_PREFIX = '\u0001';

/** Record key under which a publish's dedupId is indexed. */
export function dedupKey(dedupId: string): string {
  return `${SYSTEM_PREFIX}dedup:${dedupId}`;
}

/** Record key of a committed copy in its target topic: the half record's log position (a
 *  dispatch interrupted by a crash is found by it and not made twice). */
export function committedKey(halfLogOffset: number): string {
  return `${SYSTEM_PREFIX}txn:${halfLogOffset}`;
}

/** Record key under which a dead letter is found by its original message id. */
export function deadLetterKey(messageId: string): string {
  return `${SYSTEM_PREFIX}mid:${messageId}`;
}

/** Record key of a re-sent copy in its re-send topic: the dead letter's log position (a re-send
 *  interrupted by a crash is found by it and not made twice). */
export function resentKey(deadLetterLogOffset: number): string {
  return `${SYSTEM_PREFIX}resent:${deadLetterLogOffset}`;
}

export function isResentKey(key: string): boolean {
  return key.startsWith(`${SYSTEM_PREFIX}resent:`);
}

export function isSystemName(name: string): boolean {
  return name.startsWith(SYSTEM_PREFIX);
}

/** resendTopic from a group key and a store topic name (both tenant/instance/name). */
/** The group and user topic of a re-send topic's store name (resendTopic), or null when `name`
 *  is not one. */
export function resendTopicParts(
  name: string,
): { tenantId: string; instanceId: string; group: string; topic: string } | null {
  const parts = name.split('/');
  if (parts.length !== 5 || parts[2] !== '%RETRY%') return null;
  const [tenantId, instanceId, , group, topic] = parts as [string, string, string, string, string];
  return { tenantId, instanceId, group, topic };
}

export function resendTopicOf(groupKeyName: string, storeTopicName: string): string {
  const [tenantId = '', instanceId = '', group = ''] = groupKeyName.split('/');
  return resendTopic({ tenantId, instanceId, group }, storeTopicName.split('/')[2] ?? '');
}

/** The store topic and store queue behind a subscription's queue id (the re-send queue lives in
 *  the group's re-send topic, queue 0). */
export function subscriptionQueue(
  topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>,
  group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
  queueId: number,
): [string, number] {
  return queueId === RESEND_QUEUE_ID
    ? [resendTopic(group, topic.topic), 0]
    : [storeTopic(topic), queueId];
}
