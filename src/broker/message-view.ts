// Turns stored records into what users see: reserved properties and keys taken out, the body
// encoding and sharding key restored, copies (dead letters, re-sends) shown as their original. A
// committed transactional message keeps its own queue place and shows its half's publish time.
// The body is passed in opened (BodyKeys.open): a sealed record whose key is gone has no view.
import type { MessageFields, MessageView, ReceivedMessage } from '../model/index.js';
import type { StoredMessage } from '../store/index.js';
import { isSystemName, SystemProperty } from './names.js';

export function userFields(message: StoredMessage, body: Buffer): MessageFields {
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.properties)) {
    if (!isSystemName(name)) properties[name] = value;
  }
  return {
    body,
    bodyEncoding: message.properties[SystemProperty.bodyEncoding] === 'b' ? 'base64' : 'utf8',
    tag: message.tag === '' ? null : message.tag,
    keys: message.keys.filter((key) => !isSystemName(key)),
    properties,
    shardingKey: message.properties[SystemProperty.shardingKey] ?? null,
  };
}

/** Where a message first stood: a copy names its original queue position and publish time. */
export function origin(message: StoredMessage): {
  queueId: number;
  queueOffset: number;
  publishTime: number;
} {
  const queueId = message.properties[SystemProperty.originQueueId];
  if (queueId === undefined) {
    return {
      queueId: message.queueId,
      queueOffset: message.queueOffset,
      publishTime: publishTimeOf(message),
    };
  }
  return {
    queueId: Number(queueId),
    queueOffset: Number(message.properties[SystemProperty.originQueueOffset]),
    publishTime: Number(message.properties[SystemProperty.originPublishTime]),
  };
}

/** A delayed message's copy stands in its real queue but keeps its original publish time. */
function publishTimeOf(message: StoredMessage): number {
  const time = message.properties[SystemProperty.originPublishTime];
  return time === undefined ? message.storeTimestampMs : Number(time);
}

/**
 * What a receive hands out for one delivery: a copy shows its original id and position. Built
 * field by field (no origin object) because it runs once per delivered message.
 */
export function receivedMessage(
  message: StoredMessage,
  body: Buffer,
  messageId: string,
  receiptHandle: string,
  firstDeliveryTime: number,
  deliveryAttempt: number,
  nextVisibleTime: number,
): ReceivedMessage {
  const copy = message.properties[SystemProperty.originQueueId] !== undefined;
  const received: ReceivedMessage = {
    messageId,
    receiptHandle,
    ...userFields(message, body),
    queueId: copy ? Number(message.properties[SystemProperty.originQueueId]) : message.queueId,
    queueOffset: copy
      ? Number(message.properties[SystemProperty.originQueueOffset])
      : message.queueOffset,
    publishTime: publishTimeOf(message),
    firstDeliveryTime,
    deliveryAttempt,
    nextVisibleTime,
  };
  // a delayed message's copy (dead letters and re-sends of it keep its properties)
  const deliverAt = message.properties[SystemProperty.deliverAt];
  if (deliverAt !== undefined) received.deliverAt = Number(deliverAt);
  return received;
}

export function messageView(
  message: StoredMessage,
  messageId: string,
  userTopic: string,
  body: Buffer,
): MessageView {
  const place = origin(message);
  return {
    messageId,
    topic: userTopic,
    queueId: place.queueId,
    queueOffset: place.queueOffset,
    publishTime: place.publishTime,
    ...userFields(message, body),
  };
}

/** Properties of a copy of `message` (dead letter, re-send) that remember the original. */
export function copyProperties(
  message: StoredMessage,
  messageId: string,
  userTopic: string,
): Record<string, string> {
  const place = origin(message);
  return {
    ...message.properties,
    [SystemProperty.messageId]: messageId,
    [SystemProperty.originTopic]: userTopic,
    [SystemProperty.originQueueId]: String(place.queueId),
    [SystemProperty.originQueueOffset]: String(place.queueOffset),
    [SystemProperty.originPublishTime]: String(place.publishTime),
  };
}

/** The consumer slots a BROADCASTING dead letter names (none waiting, or a dead letter from
 *  before they were named: none). */
export function deadLetteredBy(deadLetter: StoredMessage | undefined): number[] {
  const by = deadLetter?.properties[SystemProperty.deadLetteredBy];
  return by === undefined || by === '' ? [] : by.split(',').map(Number);
}
