// The protocol's `Properties` string — `key:value` pairs joined by `|` — and its reserved keys:
// `KEYS` (message keys, space-separated), `__STARTDELIVERTIME` (timed delivery, epoch ms),
// `__SHARDINGKEY` (ordered messages' partition key) and `__TransCheckT` (seconds to the first
// check-back; marks a transactional message). Every other pair is a user property. Parsing
// splits on `|`, skips empty segments and splits each at its first `:`; formatting leaves out
// what the SDKs would drop or misread (a `|` or `:` inside, an empty side, a user property named
// like a reserved key). A user property named
// `__proto__` is refused (InvalidArgument): objects cannot hold it. Pure functions.
import { WharfError } from '../../errors.js';

export const KEYS = 'KEYS';
export const START_DELIVER_TIME = '__STARTDELIVERTIME';
export const SHARDING_KEY = '__SHARDINGKEY';
export const TRANS_CHECK_TIME = '__TransCheckT';

/** What a publish's `Properties` say, reserved keys taken out. */
export interface ParsedProperties {
  keys?: string[];
  startDeliverTimeMs?: number;
  shardingKey?: string;
  transCheckSeconds?: number;
  /** User properties, in order. */
  user: Record<string, string>;
}

const DECIMAL = /^\d{1,16}$/;

function invalid(message: string): WharfError {
  return new WharfError('InvalidArgument', message);
}

export function parseProperties(text: string | undefined): ParsedProperties {
  const parsed: ParsedProperties = { user: {} };
  if (text === undefined) return parsed;
  for (const segment of text.split('|')) {
    if (segment === '') continue;
    const colon = segment.indexOf(':');
    if (colon <= 0) throw invalid(`property "${segment}" is not key:value`);
    const name = segment.slice(0, colon);
    const value = segment.slice(colon + 1);
    switch (name) {
      case KEYS: {
        const keys = value.split(' ').filter((k) => k !== '');
        if (keys.length > 0) parsed.keys = keys;
        break;
      }
      case START_DELIVER_TIME:
        if (!DECIMAL.test(value)) throw invalid(`${START_DELIVER_TIME} must be epoch ms`);
        parsed.startDeliverTimeMs = Number(value);
        break;
      case SHARDING_KEY:
        if (value !== '') parsed.shardingKey = value;
        break;
      case TRANS_CHECK_TIME:
        if (!DECIMAL.test(value)) throw invalid(`${TRANS_CHECK_TIME} must be whole seconds`);
        parsed.transCheckSeconds = Number(value);
        break;
      default:
        // A user property is a key of an object from here to the store: `__proto__` cannot be
        // one (assigned, it is silently lost), so it is refused rather than dropped.
        if (name === '__proto__') throw invalid('a property may not be named __proto__');
        if (Object.hasOwn(parsed.user, name)) throw invalid(`property ${name} is given twice`);
        parsed.user[name] = value;
    }
  }
  return parsed;
}

/** What a stored message's properties look like on the wire (undefined when none). */
export interface PropertySource {
  keys: readonly string[];
  shardingKey: string | null;
  properties: Readonly<Record<string, string>>;
  /** A timed message's due time: `__STARTDELIVERTIME` (the SDK's StartDeliverTime). */
  deliverAt?: number;
}

function sendable(part: string): boolean {
  return part !== '' && !part.includes('|') && !part.includes(':');
}

/** Names the SDKs read as the message's own fields, never as user properties. */
const RESERVED = new Set([KEYS, START_DELIVER_TIME, SHARDING_KEY, TRANS_CHECK_TIME]);

export function formatProperties(message: PropertySource): string | undefined {
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(message.properties)) {
    // a user property (published through /v1) named like a reserved key is left out: the SDK
    // would take it for the message's keys, sharding key or times
    if (RESERVED.has(name)) continue;
    if (sendable(name) && sendable(value)) pairs.push(`${name}:${value}`);
  }
  // space-separated: a /v1 key holding a space would read as two keys, and is left out
  const keys = message.keys.filter((key) => sendable(key) && !key.includes(' ')).join(' ');
  if (keys !== '') pairs.push(`${KEYS}:${keys}`);
  if (message.shardingKey !== null && sendable(message.shardingKey)) {
    pairs.push(`${SHARDING_KEY}:${message.shardingKey}`);
  }
  if (message.deliverAt !== undefined) pairs.push(`${START_DELIVER_TIME}:${message.deliverAt}`);
  return pairs.length === 0 ? undefined : pairs.join('|');
}
