// Metadata records as stored in Redis (JSON values) and returned by the repositories.
// Topic and group records are the model's descriptors (src/model), so the gateway passes them to
// the brokers unchanged.
import type { GroupDescriptor, TopicDescriptor } from '../model/index.js';

export const ACTIONS = ['manage', 'publish', 'consume', 'query'] as const;
export type Action = (typeof ACTIONS)[number];

export interface Permission {
  /** An instance id, or `*` for every instance of the tenant. */
  instance: string;
  actions: Action[];
}

export interface Quotas {
  publishPerSecond: number;
  consumePerSecond: number;
  maxTopics: number;
  maxGroups: number;
  maxMessageBytes: number;
}

export type TenantStatus = 'active' | 'suspended';

export interface Tenant {
  tenantId: string;
  name: string;
  status: TenantStatus;
  quotas: Quotas;
  createdAt: number;
}

export interface AccessKeyRecord {
  accessKeyId: string;
  tenantId: string;
  description?: string;
  permissions: Permission[];
  createdAt: number;
  /** The secret sealed with AES-256-GCM (see secret-box.ts); never leaves the meta room. */
  sealedSecret: string;
}

export type AccessKeyView = Omit<AccessKeyRecord, 'sealedSecret'>;

export interface Instance {
  instanceId: string;
  tenantId: string;
  name: string;
  createdAt: number;
}

export type TopicRecord = TopicDescriptor;
export type GroupRecord = GroupDescriptor;

export const ALARM_METRICS = [
  'backlog',
  'oldestUnackedAgeMs',
  'deadLetters',
  'publishRate',
] as const;
export type AlarmMetric = (typeof ALARM_METRICS)[number];

export interface AlarmSpec {
  metric: AlarmMetric;
  topic: string;
  group?: string;
  threshold: number;
  forSeconds: number;
  webhookUrl: string;
}

export interface Alarm extends AlarmSpec {
  alarmId: string;
  tenantId: string;
  instanceId: string;
  createdAt: number;
  updatedAt: number;
}

/** Where an alarm's evaluation stands: `pending` while its condition holds for less than its
 *  forSeconds, `firing` once notified. A resolution is the step firing → ok. */
export const ALARM_STATES = ['ok', 'pending', 'firing'] as const;
export type AlarmStateName = (typeof ALARM_STATES)[number];

/** An alarm's evaluation state as kept in Redis, so a restarted node neither fires twice nor
 *  forgets a pending condition. */
export interface AlarmState {
  state: AlarmStateName;
  /** When the current state began (pending: when the condition started to hold). */
  sinceMs: number;
  /** Notifications sent so far: the next one's number, and its job id, are seq + 1. */
  seq: number;
  /** The last value read. */
  value: number;
}

export const ALARM_EVENT_TYPES = ['fired', 'resolved', 'delivery'] as const;

/** One line of an alarm's history: a transition, or one delivery attempt of its notification. */
export interface AlarmEvent {
  type: (typeof ALARM_EVENT_TYPES)[number];
  time: number;
  /** The notification's number (transitions and their deliveries share it). */
  seq: number;
  value?: number;
  threshold?: number;
  /** Deliveries: the attempt (1-based), whether it was accepted, the HTTP status or the error. */
  attempt?: number;
  ok?: boolean;
  status?: number;
  error?: string;
}

/** What usage counts, per instance and hour. */
export const USAGE_COUNTERS = [
  'requests',
  'messagesPublished',
  'bytesPublished',
  'messagesDelivered',
  'bytesDelivered',
  'messagesAcked',
  'apiCallsPublish',
  'apiCallsConsume',
  'apiCallsManage',
  'apiCallsQuery',
  'storageBytes',
] as const;
export type UsageCounter = (typeof USAGE_COUNTERS)[number];

/** One hour of an instance's usage; storageBytes is a gauge (the last sample of the hour). */
export interface UsageBucket {
  instanceId: string;
  /** Start of the hour, epoch ms. */
  hour: number;
  counters: Record<UsageCounter, number>;
}

export const DEFAULT_PERMISSIONS: Permission[] = [
  { instance: '*', actions: ['manage', 'publish', 'consume', 'query'] },
];

export const DEFAULT_QUOTAS: Quotas = {
  publishPerSecond: 100_000,
  consumePerSecond: 100_000,
  maxTopics: 1000,
  maxGroups: 1000,
  maxMessageBytes: 4 * 1024 * 1024,
};

/** Whether `permissions` grant `action` on `instanceId`. */
export function allows(permissions: readonly Permission[], instanceId: string, action: Action) {
  for (const p of permissions) {
    if ((p.instance === '*' || p.instance === instanceId) && p.actions.includes(action))
      return true;
  }
  return false;
}

/** Whether `permissions` grant any action at all on `instanceId`. */
export function allowsAny(permissions: readonly Permission[], instanceId: string) {
  return permissions.some(
    (p) => (p.instance === '*' || p.instance === instanceId) && p.actions.length > 0,
  );
}

/**
 * The permissions granted by both `requested` and `held`: a token asked for with `requested` by a
 * key holding `held` never gets more than the key has.
 */
export function intersectPermissions(
  requested: readonly Permission[],
  held: readonly Permission[],
): Permission[] {
  const out: Permission[] = [];
  const add = (instance: string, actions: Action[]) => {
    if (actions.length === 0) return;
    const existing = out.find((p) => p.instance === instance);
    if (existing === undefined) out.push({ instance, actions: [...actions] });
    else for (const a of actions) if (!existing.actions.includes(a)) existing.actions.push(a);
  };
  for (const r of requested) {
    if (r.instance === '*') {
      for (const h of held)
        add(
          h.instance,
          r.actions.filter((a) => h.actions.includes(a)),
        );
    } else {
      add(
        r.instance,
        r.actions.filter((a) => allows(held, r.instance, a)),
      );
    }
  }
  for (const p of out) p.actions.sort((a, b) => ACTIONS.indexOf(a) - ACTIONS.indexOf(b));
  return out;
}

/** A broker as the registry knows it (cluster): where gateways reach it and who holds its id. */
export interface BrokerRecord {
  brokerId: number;
  /** `host:port` of its RPC server, as other processes reach it. */
  address: string;
  /** The token of the process holding the id's lease (a restart takes a new one). */
  owner: string;
  startedAt: number;
}
