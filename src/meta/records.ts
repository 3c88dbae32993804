// The format of every JSON record Wharf keeps in Redis (tenant, access key, instance, topic,
// group, alarm, signing key, broker, publish fence, pending drop): one narrow schema each, and the one decoder that reads them. The
// version is the record's own `v` field: records written before versions existed have none and
// are v1; new ones are written with `v: 1` (`encodeRecord`). Reading strips `v` and any field a
// schema does not name (e.g. the `spec` put-resource-5.lua keeps), so no answer shows them; a
// future version, bad JSON or a malformed field is an Internal error naming the key, never a cast.
import type { JWK } from 'jose';
import { WharfError } from '../errors.js';
import type {
  GroupDescriptor,
  PendingDrop,
  PublishFence,
  RetryPolicy,
  TopicDescriptor,
} from '../model/index.js';
import {
  ACTIONS,
  ALARM_EVENT_TYPES,
  ALARM_METRICS,
  ALARM_STATES,
  type AccessKeyRecord,
  type BrokerRecord,
  type Alarm,
  type AlarmEvent,
  type AlarmState,
  type Instance,
  type Permission,
  type Tenant,
} from './types.js';

export const RECORD_VERSION = 1;

/** Where a record lives: its Redis key, and its field when the key is a hash. */
export interface RecordAt {
  key: string;
  field?: string;
}

/** Checks `value` (at `path` in the record) and returns it typed; throws a message otherwise. */
type Check<T> = (value: unknown, path: string) => T;

class FieldError extends Error {}

function fail(path: string, what: string): never {
  throw new FieldError(`field ${path} ${what}`);
}

const str: Check<string> = (v, path) => (typeof v === 'string' ? v : fail(path, 'is not a string'));
const num: Check<number> = (v, path) =>
  typeof v === 'number' && Number.isFinite(v) ? v : fail(path, 'is not a number');
const int: Check<number> = (v, path) =>
  Number.isSafeInteger(v) ? (v as number) : fail(path, 'is not an integer');

function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (v, path) =>
    values.includes(v as T) ? (v as T) : fail(path, `is not one of ${values.join(', ')}`);
}

function arrayOf<T>(item: Check<T>): Check<T[]> {
  return (v, path) =>
    Array.isArray(v) ? v.map((x, i) => item(x, `${path}[${i}]`)) : fail(path, 'is not an array');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const jsonObject: Check<Record<string, unknown>> = (v, path) =>
  isObject(v) ? v : fail(path, 'is not an object');

type Shape<T> = { [K in keyof T]-?: Check<T[K]> & { optional?: true } };

function optional<T>(check: Check<T>): Check<T | undefined> & { optional: true } {
  return Object.assign(
    (v: unknown, path: string) => (v === undefined ? undefined : check(v, path)),
    {
      optional: true as const,
    },
  );
}

/** An object with exactly the named fields (others dropped); optional ones absent stay absent. */
function object<T>(shape: Shape<T>): Check<T> {
  return (v, path) => {
    if (!isObject(v)) fail(path, 'is not an object');
    const out: Record<string, unknown> = {};
    const checks: [string, Check<unknown>][] = Object.entries(shape);
    for (const [name, check] of checks) {
      const value = check(v[name], path === '' ? name : `${path}.${name}`);
      if (value !== undefined) out[name] = value;
    }
    return out as T;
  };
}

const retryPolicy: Check<RetryPolicy> = (v, path) => {
  if (isObject(v) && 'backoffSeconds' in v) {
    return object<{ backoffSeconds: number[] }>({ backoffSeconds: arrayOf(num) })(v, path);
  }
  return object<{
    exponential: { initialSeconds: number; multiplier: number; maxSeconds: number };
  }>({
    exponential: object({ initialSeconds: num, multiplier: num, maxSeconds: num }),
  })(v, path);
};

const permission = object<Permission>({ instance: str, actions: arrayOf(oneOf(ACTIONS)) });

/** A record kind: its name in messages and its fields. */
export interface RecordSchema<T> {
  kind: string;
  check: Check<T>;
}

function schema<T>(kind: string, shape: Shape<T>): RecordSchema<T> {
  return { kind, check: object(shape) };
}

export const TENANT = schema<Tenant>('tenant', {
  tenantId: str,
  name: str,
  status: oneOf(['active', 'suspended']),
  quotas: object({
    publishPerSecond: num,
    consumePerSecond: num,
    maxTopics: num,
    maxGroups: num,
    maxMessageBytes: num,
  }),
  createdAt: num,
});

export const ACCESS_KEY = schema<AccessKeyRecord>('access key', {
  accessKeyId: str,
  tenantId: str,
  description: optional(str),
  permissions: arrayOf(permission),
  createdAt: num,
  sealedSecret: str,
});

export const INSTANCE = schema<Instance>('instance', {
  instanceId: str,
  tenantId: str,
  name: str,
  createdAt: num,
});

const topicShape: Shape<TopicDescriptor> = {
  tenantId: str,
  instanceId: str,
  topic: str,
  messageType: oneOf(['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION']),
  queueCount: int,
  retentionHours: num,
  dedupWindowMs: num,
  createdAt: num,
};

export const TOPIC = schema<TopicDescriptor>('topic', topicShape);

const groupShape: Shape<GroupDescriptor> = {
  tenantId: str,
  instanceId: str,
  group: str,
  deliveryMode: oneOf(['CLUSTERING', 'BROADCASTING']),
  maxDeliveryAttempts: int,
  invisibleSeconds: num,
  retryPolicy: optional(retryPolicy),
  createdAt: num,
  incarnation: optional(str),
};

export const GROUP = schema<GroupDescriptor>('group', groupShape);

/** An alarm as stored: its webhook signing secret sealed (see alarms.ts). */
export interface StoredAlarm extends Alarm {
  sealedWebhookSecret: string;
}

export const ALARM = schema<StoredAlarm>('alarm', {
  alarmId: str,
  tenantId: str,
  instanceId: str,
  metric: oneOf(ALARM_METRICS),
  topic: str,
  group: optional(str),
  threshold: num,
  forSeconds: num,
  webhookUrl: str,
  createdAt: num,
  updatedAt: num,
  sealedWebhookSecret: str,
});

export const ALARM_STATE = schema<AlarmState>('alarm state', {
  state: oneOf(ALARM_STATES),
  sinceMs: num,
  seq: int,
  value: num,
});

export const ALARM_EVENT = schema<AlarmEvent>('alarm event', {
  type: oneOf(ALARM_EVENT_TYPES),
  time: num,
  seq: int,
  value: optional(num),
  threshold: optional(num),
  attempt: optional(int),
  ok: optional((v, path) => (typeof v === 'boolean' ? v : fail(path, 'is not a boolean'))),
  status: optional(int),
  error: optional(str),
});

export interface StoredSigningKey {
  kid: string;
  publicJwk: JWK;
  sealedPrivateJwk: string;
  createdAt: number;
}

export const SIGNING_KEY = schema<StoredSigningKey>('signing key', {
  kid: str,
  publicJwk: jsonObject,
  sealedPrivateJwk: str,
  createdAt: num,
});

/** A publish fence a gateway left for a broker (meta/publish-fences.ts). */
export const PUBLISH_FENCE = schema<PublishFence>('publish fence', {
  requestId: str,
  topic: object(topicShape),
  queueIds: arrayOf(int),
  sentAtMs: num,
});

type DropOf<K extends PendingDrop['kind']> = Extract<PendingDrop, { kind: K }>;

const pendingDropKinds: { [K in PendingDrop['kind']]: Check<DropOf<K>> } = {
  topic: object<DropOf<'topic'>>({
    kind: oneOf(['topic']),
    dropId: str,
    droppedAtMs: num,
    topic: object(topicShape),
  }),
  group: object<DropOf<'group'>>({
    kind: oneOf(['group']),
    dropId: str,
    droppedAtMs: num,
    group: object(groupShape),
  }),
  instance: object<DropOf<'instance'>>({
    kind: oneOf(['instance']),
    dropId: str,
    droppedAtMs: num,
    tenantId: str,
    instanceId: str,
  }),
};

/** A drop a gateway left for a broker that was down (meta/pending-drops.ts): its `kind` says
 *  which fields follow. */
export const PENDING_DROP: RecordSchema<PendingDrop> = {
  kind: 'pending drop',
  check: (v, path): PendingDrop => {
    const kind = isObject(v) ? v.kind : undefined;
    const at = path === '' ? 'kind' : `${path}.kind`;
    if (kind === 'topic') return pendingDropKinds.topic(v, path);
    if (kind === 'group') return pendingDropKinds.group(v, path);
    if (kind === 'instance') return pendingDropKinds.instance(v, path);
    return fail(at, 'is not one of topic, group, instance');
  },
};

export const BROKER = schema<BrokerRecord>('broker', {
  brokerId: int,
  address: str,
  owner: str,
  startedAt: num,
});

/** The private half of a signing key, sealed inside its record: a JWK, kept whole. */
export const PRIVATE_JWK: RecordSchema<JWK> = {
  kind: 'private signing key',
  check: (v, path): JWK => jsonObject(v, path),
};

function where(at: RecordAt): string {
  return at.field === undefined ? at.key : `${at.key} [${at.field}]`;
}

/** The JSON of a new record: its fields and the current version. */
export function encodeRecord(record: object): string {
  return JSON.stringify({ v: RECORD_VERSION, ...record });
}

/** Parses and checks a record read from `at`; throws an Internal WharfError naming `at`. */
export function decodeRecord<T>(schema: RecordSchema<T>, json: string, at: RecordAt): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new WharfError('Internal', `the ${schema.kind} record at ${where(at)} is not JSON`, {
      cause,
    });
  }
  if (!isObject(value)) {
    throw new WharfError('Internal', `the ${schema.kind} record at ${where(at)} is not an object`);
  }
  const version = value.v ?? 1;
  if (version !== RECORD_VERSION) {
    throw new WharfError(
      'Internal',
      `the ${schema.kind} record at ${where(at)} has version ${JSON.stringify(version)}; ` +
        `this Wharf reads version ${RECORD_VERSION}`,
    );
  }
  try {
    return schema.check(value, '');
  } catch (err) {
    if (!(err instanceof FieldError)) throw err;
    throw new WharfError('Internal', `the ${schema.kind} record at ${where(at)}: ${err.message}`);
  }
}
