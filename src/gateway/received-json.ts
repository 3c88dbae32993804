// The JSON of received messages, written by hand: the receive answer `{"messages":[…]}` and a
// streaming receive's lines. Byte for byte what fastify's schema serializer writes for the
// ReceivedMessage schema (same fields, same order, same escaping; a test holds it to that), less
// the work that serializer does per byte: a base64 body is written between quotes as it is (its
// alphabet never needs escaping), where the schema serializer scans every character of it.
// That scan was the largest single item of the event loop's profile in a bench:e2e drain.
import { WharfError } from '../errors.js';
import type { ReceivedMessage } from '../model/index.js';

/** Characters a JSON string must escape (and lone surrogates, which JSON.stringify escapes). */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** A JSON string literal, escaped as JSON.stringify escapes (the schema serializer too); the
 *  scan first, as that serializer does, since most strings need no escaping. */
function jsonString(value: string): string {
  return value.length < 5000 && !NEEDS_ESCAPE.test(value) ? `"${value}"` : JSON.stringify(value);
}

function nullableString(value: string | null): string {
  return value === null ? 'null' : jsonString(value);
}

function keysJson(keys: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < keys.length; i++) out += (i === 0 ? '' : ',') + jsonString(keys[i]);
  return `${out}]`;
}

function propertiesJson(properties: Readonly<Record<string, string>>): string {
  let out = '{';
  let first = true;
  for (const [name, value] of Object.entries(properties)) {
    out += `${first ? '' : ','}${jsonString(name)}:${jsonString(value)}`;
    first = false;
  }
  return `${out}}`;
}

function bodyJson(message: ReceivedMessage): string {
  return message.bodyEncoding === 'base64'
    ? `"${message.body.toString('base64')}"`
    : jsonString(message.body.toString('utf8'));
}

/** One received message as a JSON object, in the ReceivedMessage schema's field order. */
export function receivedMessageJson(m: ReceivedMessage): string {
  return (
    `{"messageId":${jsonString(m.messageId)}` +
    `,"receiptHandle":${jsonString(m.receiptHandle)}` +
    `,"body":${bodyJson(m)}` +
    `,"bodyEncoding":"${m.bodyEncoding}"` +
    `,"tag":${nullableString(m.tag)}` +
    `,"keys":${keysJson(m.keys)}` +
    `,"properties":${propertiesJson(m.properties)}` +
    `,"shardingKey":${nullableString(m.shardingKey)}` +
    `,"queueId":${integer(m.queueId)}` +
    `,"queueOffset":${integer(m.queueOffset)}` +
    `,"publishTime":${integer(m.publishTime)}` +
    `,"firstDeliveryTime":${integer(m.firstDeliveryTime)}` +
    `,"deliveryAttempt":${integer(m.deliveryAttempt)}` +
    `,"nextVisibleTime":${integer(m.nextVisibleTime)}}`
  );
}

/** The receive route's answer. */
export function receiveAnswerJson(messages: readonly ReceivedMessage[]): string {
  let out = '{"messages":[';
  for (let i = 0; i < messages.length; i++)
    out += (i === 0 ? '' : ',') + receivedMessageJson(messages[i]);
  return `${out}]}`;
}

/** The broker's numbers are integers. One that is not is written as the schema serializer
 *  writes an integer field (truncated); one that is not a finite number throws, as it does (a
 *  500, never invalid JSON). */
function integer(value: number): string {
  if (Number.isInteger(value)) return String(value);
  if (!Number.isFinite(value)) throw new WharfError('Internal', `${value} is not an integer`);
  return String(Math.trunc(value));
}
