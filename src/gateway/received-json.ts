// The JSON of received messages, written by hand: the receive answer `{"messages":[…]}` and a
// streaming receive's lines. Byte for byte what fastify's schema serializer writes for the
// ReceivedMessage schema (same fields, same order, same escaping; a test holds it to that), less
// the work that serializer does per byte:
// - a base64 body is written between quotes as it is (its alphabet never needs escaping), where
//   the schema serializer scans every character of it;
// - a UTF-8 body that is valid UTF-8 and holds no byte JSON escapes (controls, `"`, `\`) goes
//   into the answer as its own bytes, rather than decoded into a string, scanned with a regular
//   expression, and encoded back. JSON.stringify writes such a string unchanged, so the bytes
//   are the same.
// - the answer is written into one buffer of its size, its text as latin1 when it is all ASCII
//   (base64 bodies, ids, numbers and ASCII tags, keys and properties: the common case), which
//   writes the same bytes as UTF-8 at about a third of the cost for a rope of 40 KiB (2.5 →
//   0.75 µs a message of 1 KiB); whether it is comes from jsonString's own scan, not another;
// - integers past the small-integer range (times, offsets) are written in two parts, each
//   small, about 3.5× faster than String() of the whole (76 against 267 ns).
// Those scans and that round trip were the largest items of the event loop's profile in a
// bench:e2e drain.
import { isUtf8 } from 'node:buffer';
import { WharfError } from '../errors.js';
import type { ReceivedMessage } from '../model/index.js';

/** Characters a JSON string must escape (and lone surrogates, which JSON.stringify escapes). */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;
/** What the fast path of jsonString leaves alone: printable ASCII but `"` and `\`. */
const NOT_PLAIN = /[^\u0020-\u0021\u0023-\u005b\u005d-\u007e]/;
/** A character outside ASCII. */
const NON_ASCII = /[^\u0000-\u007f]/;

/** Whether a string written by jsonString since the answer began held a character outside
 *  ASCII: then the answer's text is encoded as UTF-8, else as latin1 (the same bytes, faster). */
let nonAscii = false;

/** A JSON string literal, escaped as JSON.stringify escapes (the schema serializer too); the
 *  scan first, as that serializer does, since most strings need no escaping. */
function jsonString(value: string): string {
  if (value.length < 5000 && !NOT_PLAIN.test(value)) return `"${value}"`;
  if (!nonAscii && NON_ASCII.test(value)) nonAscii = true;
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

/** Whether a byte of `bytes` is one a JSON string escapes: below 0x20, `"` or `\`. Four bytes
 *  at a time over the aligned middle (SWAR: a lane below 0x20, or equal to 0x22 or 0x5c, sets
 *  its top bit; bytes of 0x80 and above set none). */
export function hasJsonEscapeByte(bytes: Uint8Array): boolean {
  const n = bytes.length;
  let i = 0;
  const head = Math.min(n, (4 - (bytes.byteOffset & 3)) & 3);
  for (; i < head; i++) if (escapes(bytes[i])) return true;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const lanes = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const x = lanes[k];
      const quote = x ^ 0x22222222;
      const backslash = x ^ 0x5c5c5c5c;
      const below = (x - 0x20202020) & ~x;
      const isQuote = (quote - 0x01010101) & ~quote;
      const isBackslash = (backslash - 0x01010101) & ~backslash;
      if (((below | isQuote | isBackslash) & 0x80808080) !== 0) return true;
    }
    i += words << 2;
  }
  for (; i < n; i++) if (escapes(bytes[i])) return true;
  return false;
}

function escapes(byte: number): boolean {
  return byte < 0x20 || byte === 0x22 || byte === 0x5c;
}

/** The JSON of a message up to its body's value. */
function headJson(m: ReceivedMessage): string {
  return `{"messageId":${jsonString(m.messageId)},"receiptHandle":${jsonString(m.receiptHandle)},"body":`;
}

/** The JSON of a message after its body's value. */
function tailJson(m: ReceivedMessage): string {
  return (
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

/** UTF-8 bodies shorter than this go through the string path: for them, the answer's extra
 *  part costs more than the scan and round trip it saves (micro-benchmark, 32 × 16 B). */
const RAW_BODY_MIN_BYTES = 128;

/** The messages' JSON objects between `open` and `close`, `separator` between two. */
function messagesJson(
  messages: readonly ReceivedMessage[],
  open: string,
  separator: string,
  close: string,
): Buffer {
  nonAscii = false;
  // the answer is texts[0] bodies[0] texts[1] bodies[1] … texts[n]: UTF-8 bodies copied as they
  // are, and the text around them
  const texts: string[] = [];
  const bodies: Buffer[] = [];
  let text = open;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (i > 0) text += separator;
    text += headJson(m);
    const body = m.body;
    if (
      m.bodyEncoding === 'utf8' &&
      body.length >= RAW_BODY_MIN_BYTES &&
      !hasJsonEscapeByte(body) &&
      isUtf8(body)
    ) {
      texts.push(`${text}"`);
      bodies.push(body);
      text = '"';
    } else {
      text += bodyJson(m);
    }
    text += tailJson(m);
  }
  texts.push(text + close);
  const encoding = nonAscii ? 'utf8' : 'latin1';
  let size = 0;
  for (const part of texts) size += nonAscii ? Buffer.byteLength(part) : part.length;
  for (const part of bodies) size += part.length;
  // one buffer written in place: no buffer a part and no concat
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let k = 0; k < bodies.length; k++) {
    at += out.write(texts[k], at, encoding);
    at += bodies[k].copy(out, at);
  }
  out.write(texts[bodies.length], at, encoding);
  return out;
}

/** The receive route's answer. */
export function receiveAnswer(messages: readonly ReceivedMessage[]): Buffer {
  return messagesJson(messages, '{"messages":[', ',', ']}');
}

/** A streaming receive's lines: one message's JSON object a line. */
export function receivedLines(messages: readonly ReceivedMessage[]): Buffer {
  return messagesJson(messages, '', '\n', messages.length > 0 ? '\n' : '');
}

/** The broker's numbers are integers. One that is not is written as the schema serializer
 *  writes an integer field (truncated); one that is not a finite number throws, as it does (a
 *  500, never invalid JSON). */
function integer(value: number): string {
  if (Number.isInteger(value)) return integerText(value);
  if (!Number.isFinite(value)) throw new WharfError('Internal', `${value} is not an integer`);
  return String(Math.trunc(value));
}

/** Zeros to pad the low part of integerText to LOW_DIGITS digits, by its length. */
const LOW_DIGITS = 7;
const ZEROS = ['', '0', '00', '000', '0000', '00000', '000000'];

/** String(value) of an integer: a safe integer past 2^30 (not a small integer to V8) as two
 *  small integers' texts, the low one of LOW_DIGITS digits (the high one is below 2^30). */
export function integerText(value: number): string {
  if (Math.abs(value) < 0x40000000 || !Number.isSafeInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  const high = Math.floor(magnitude / 10 ** LOW_DIGITS);
  const low = String(magnitude - high * 10 ** LOW_DIGITS);
  return `${value < 0 ? '-' : ''}${String(high)}${ZEROS[LOW_DIGITS - low.length]}${low}`;
}
