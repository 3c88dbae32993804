// Between the protocol's messages and Wharf's, so that one message world holds for both APIs:
// a publish request becomes the same PublishMessage a /v1 publish makes (tag, keys, user
// properties, sharding key, timed delivery as deliverAt), with /v1's input limits; a received
// or checked message becomes the protocol's `Message` (same id, same handle format; a half
// message's handle is its transactionId). Pure functions.
import { WharfError } from '../../errors.js';
import type {
  CheckedMessage,
  MessageType,
  PublishMessage,
  ReceivedMessage,
} from '../../model/index.js';
import { MAX_DELAY_SECONDS, TAG_PATTERN } from '../schemas/messages.js';
import { formatProperties, parseProperties } from './properties.js';
import { messageBodyMd5 } from './signature.js';
import type { MqMessage, PublishRequest } from './xml-codec.js';

const TAG = new RegExp(TAG_PATTERN, 'u');
/** /v1's limits (schemas/messages.ts): keys, property names and values, sharding key. */
const MAX_KEYS = 32;
const MAX_SHORT = 128;
const MAX_PROPERTIES = 64;
const MAX_PROPERTY_VALUE = 16384;
/** The broker's check-back schedule with its default options (10 s × 2^n, at most 5 min), for
 *  a broker that does not say when it offers a message again. */
const CHECK_DELAY_MS = 10_000;
const MAX_CHECK_INTERVAL_MS = 300_000;

function invalid(message: string): WharfError {
  return new WharfError('InvalidArgument', message);
}

function short(what: string, value: string): string {
  if (value.length > MAX_SHORT) throw invalid(`${what} is over ${MAX_SHORT} characters`);
  return value;
}

/** The broker's message for a publish request on a topic of `messageType`. */
export function toPublishMessage(
  request: PublishRequest,
  messageType: MessageType,
  now: number,
): PublishMessage {
  const props = parseProperties(request.properties);
  const message: PublishMessage = { body: Buffer.from(request.body, 'utf8'), bodyEncoding: 'utf8' };
  if (request.tag !== undefined) {
    if (!TAG.test(request.tag)) throw invalid('MessageTag: 1 to 128 characters, no | * or spaces');
    message.tag = request.tag;
  }
  if (props.keys !== undefined) {
    if (props.keys.length > MAX_KEYS) throw invalid(`at most ${MAX_KEYS} message keys`);
    message.keys = props.keys.map((k) => short('a message key', k));
  }
  const names = Object.keys(props.user);
  if (names.length > MAX_PROPERTIES) throw invalid(`at most ${MAX_PROPERTIES} properties`);
  for (const name of names) {
    short('a property name', name);
    if (props.user[name].length > MAX_PROPERTY_VALUE) {
      throw invalid(`property ${name} is over ${MAX_PROPERTY_VALUE} characters`);
    }
  }
  if (names.length > 0) message.properties = props.user;
  if (props.shardingKey !== undefined) {
    message.shardingKey = short('the sharding key', props.shardingKey);
  }
  if (props.transCheckSeconds !== undefined && messageType !== 'TRANSACTION') {
    throw invalid('__TransCheckT is only for TRANSACTION topics');
  }
  if (props.startDeliverTimeMs !== undefined) {
    if (messageType === 'FIFO' || messageType === 'TRANSACTION') {
      throw invalid(`timed delivery is not allowed on ${messageType} topics`);
    }
    if (props.startDeliverTimeMs > now + MAX_DELAY_SECONDS * 1000) {
      throw invalid('__STARTDELIVERTIME is more than 40 days ahead');
    }
    if (props.startDeliverTimeMs > now) message.deliverAtMs = props.startDeliverTimeMs;
  }
  return message;
}

function common(m: ReceivedMessage | CheckedMessage) {
  const properties = formatProperties(m);
  return {
    messageId: m.messageId,
    // bytes that are not UTF-8 (a base64 body published through /v1) go out as U+FFFD
    body: m.body.toString('utf8'),
    bodyMd5: messageBodyMd5(m.body),
    publishTime: m.publishTime,
    ...(m.tag === null ? {} : { tag: m.tag }),
    ...(properties === undefined ? {} : { properties }),
  };
}

export function mqMessageOf(m: ReceivedMessage): MqMessage {
  return {
    ...common(m),
    receiptHandle: m.receiptHandle,
    firstConsumeTime: m.firstDeliveryTime,
    nextConsumeTime: m.nextVisibleTime,
    consumedTimes: m.deliveryAttempt,
  };
}

/** A half message offered for check-back: its handle is the transaction id. */
export function mqHalfMessageOf(m: CheckedMessage, now: number): MqMessage {
  const backoffMs = Math.min(
    CHECK_DELAY_MS * 2 ** Math.min(m.checkCount, 30),
    MAX_CHECK_INTERVAL_MS,
  );
  return {
    ...common(m),
    receiptHandle: m.transactionId,
    firstConsumeTime: now,
    nextConsumeTime: m.nextCheckTime ?? now + backoffMs,
    consumedTimes: m.checkCount,
  };
}
