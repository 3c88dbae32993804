// Pure conversions between the JSON of the message routes and BrokerClient's types: body
// decoding (utf8 / strict base64), the size a message counts against maxMessageBytes (decoded
// body + tag + keys + property names and values, in UTF-8 bytes), delay resolution, and the
// encodings of answers.
import type {
  BodyEncoding,
  DeadLetter,
  MessageType,
  MessageView,
  PublishMessage,
} from '../model/index.js';
import { WharfError } from '../errors.js';
import { MAX_DELAY_SECONDS } from './schemas/messages.js';

export interface PublishInput {
  body: string;
  bodyEncoding: BodyEncoding;
  tag?: string;
  keys?: string[];
  properties?: Record<string, string>;
  shardingKey?: string;
  dedupId?: string;
  deliverAt?: number;
  delaySeconds?: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The body's bytes; base64 must be standard, padded, canonical base64 (what Buffer would
 *  half-accept is refused). */
export function decodeBody(body: string, encoding: BodyEncoding, index: number): Buffer {
  if (encoding === 'utf8') return Buffer.from(body, 'utf8');
  const bytes = body.length % 4 === 0 && BASE64.test(body) ? Buffer.from(body, 'base64') : null;
  // canonical only: "YR==" (its unused bits set) would read as "a", like "YQ=="
  if (bytes === null || bytes.toString('base64') !== body) {
    throw new WharfError('InvalidArgument', `messages[${index}].body is not valid base64`);
  }
  return bytes;
}

/** What a message counts against maxMessageBytes. */
export function messageBytes(message: PublishMessage): number {
  let n = message.body.length;
  if (message.tag !== undefined) n += Buffer.byteLength(message.tag);
  for (const key of message.keys ?? []) n += Buffer.byteLength(key);
  for (const [name, value] of Object.entries(message.properties ?? {})) {
    n += Buffer.byteLength(name) + Buffer.byteLength(value);
  }
  return n;
}

/** Absolute delivery time of a delayed message, or undefined; checks the topic allows it. */
export function deliverAtOf(
  input: PublishInput,
  messageType: MessageType,
  index: number,
  now: number,
): number | undefined {
  if (input.deliverAt === undefined && input.delaySeconds === undefined) return undefined;
  if (input.deliverAt !== undefined && input.delaySeconds !== undefined) {
    throw new WharfError(
      'InvalidArgument',
      `messages[${index}]: deliverAt or delaySeconds, not both`,
    );
  }
  if (messageType === 'FIFO' || messageType === 'TRANSACTION') {
    throw new WharfError(
      'InvalidArgument',
      `messages[${index}]: delayed delivery is not allowed on ${messageType} topics`,
    );
  }
  const at = input.deliverAt ?? now + input.delaySeconds! * 1000;
  if (at > now + MAX_DELAY_SECONDS * 1000) {
    throw new WharfError(
      'InvalidArgument',
      `messages[${index}]: deliverAt is more than 40 days ahead`,
    );
  }
  return at <= now ? undefined : at;
}

/** The broker's message for one validated input. */
export function toPublishMessage(
  input: PublishInput,
  messageType: MessageType,
  index: number,
  now: number,
): PublishMessage {
  const message: PublishMessage = {
    body: decodeBody(input.body, input.bodyEncoding, index),
    bodyEncoding: input.bodyEncoding,
  };
  if (input.tag !== undefined) message.tag = input.tag;
  if (input.keys !== undefined) message.keys = input.keys;
  if (input.properties !== undefined) message.properties = input.properties;
  if (input.shardingKey !== undefined) message.shardingKey = input.shardingKey;
  if (input.dedupId !== undefined) message.dedupId = input.dedupId;
  const deliverAtMs = deliverAtOf(input, messageType, index, now);
  if (deliverAtMs !== undefined) message.deliverAtMs = deliverAtMs;
  return message;
}

export function encodeBody(body: Buffer, encoding: BodyEncoding): string {
  return body.toString(encoding === 'base64' ? 'base64' : 'utf8');
}

export function messageView(m: MessageView) {
  return { ...m, body: encodeBody(m.body, m.bodyEncoding) };
}

export function deadLetterView(m: DeadLetter) {
  return { ...m, body: encodeBody(m.body, m.bodyEncoding) };
}
