// Every Redis key Wharf uses is built here. A tenant's keys share the hash tag `{<tenantId>}` so
// that the multi-key Lua scripts touch one slot (Redis Cluster safe); instance-level keys add
// `i:<instanceId>`. The only keys outside a tenant are the operator's indexes (tenant list,
// tenant names, access key → tenant), the JWT signing keys, the broker registry and the delay
// wheels, which are global by nature.

export class MetaKeys {
  constructor(readonly prefix = 'wharf') {}

  /** zset tenantId → createdAt */
  tenants(): string {
    return `${this.prefix}:tenants`;
  }
  /** string: a value sealed with the master key, opened at every start (a wrong key is seen) */
  masterKeyCheck(): string {
    return `${this.prefix}:master-key-check`;
  }
  /** hash tenant name → tenantId */
  tenantNames(): string {
    return `${this.prefix}:tenant-names`;
  }
  /** hash accessKeyId → tenantId */
  accessKeyIndex(): string {
    return `${this.prefix}:access-keys`;
  }
  /** hash kid → JSON {publicJwk, sealedPrivateJwk, createdAt} */
  jwtKeys(): string {
    return `${this.prefix}:jwt-keys`;
  }
  /** string: the kid new tokens are signed with */
  jwtCurrentKey(): string {
    return `${this.prefix}:jwt-current`;
  }
  /** pub/sub channel carrying cache invalidations */
  invalidationChannel(): string {
    return `${this.prefix}:invalidate`;
  }

  private t(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}`;
  }
  /** string: tenant JSON */
  tenant(tenantId: string): string {
    return `${this.t(tenantId)}:tenant`;
  }
  /** hash accessKeyId → access key JSON (sealed secret) */
  accessKeys(tenantId: string): string {
    return `${this.t(tenantId)}:access-keys`;
  }
  /** hash `topics` / `groups` → count over all instances (count quotas) */
  counts(tenantId: string): string {
    return `${this.t(tenantId)}:counts`;
  }
  /** hash instanceId → instance JSON */
  instances(tenantId: string): string {
    return `${this.t(tenantId)}:instances`;
  }
  /** hash instance name → instanceId */
  instanceNames(tenantId: string): string {
    return `${this.t(tenantId)}:instance-names`;
  }
  /** hash topic name → topic JSON */
  topics(tenantId: string, instanceId: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:topics`;
  }
  /** hash group name → group JSON */
  groups(tenantId: string, instanceId: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:groups`;
  }
  /** string: the instance's data key, sealed (see data-keys.ts); deleting it shreds the bodies */
  dataKey(tenantId: string, instanceId: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:data-key`;
  }
  /** hash alarmId → alarm JSON (webhook secret sealed) */
  alarms(tenantId: string, instanceId: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:alarms`;
  }

  /** hash queueId → brokerId: where a topic's queues live (cluster placement) */
  placement(tenantId: string, instanceId: string, topic: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:placement:${topic}`;
  }

  // The broker registry is the cluster's, not a tenant's (one hash tag: its scripts touch one slot).
  private brokers(): string {
    return `${this.prefix}:{brokers}`;
  }
  /** hash brokerId → broker record JSON (address, owner): every broker that ever registered */
  brokerRegistry(): string {
    return `${this.brokers()}:registry`;
  }
  /** string owner token, PX ttl: a live broker holds its id's lease and renews it */
  brokerLease(brokerId: number): string {
    return `${this.brokers()}:lease:${brokerId}`;
  }
  /** hash brokerId → queues placed on it (the weight of placement) */
  brokerLoad(): string {
    return `${this.brokers()}:load`;
  }
  /** pub/sub channel: a broker id whose registration changed (claimed, released, taken again) */
  brokerChannel(): string {
    return `${this.prefix}:brokers:changes`;
  }
  /** hash alarmId → evaluation state JSON (ok / pending / firing, since, notification seq) */
  alarmStates(tenantId: string, instanceId: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:alarm-states`;
  }
  /** list of the alarm's history events JSON, newest first, capped (LTRIM) and expiring */
  alarmHistory(tenantId: string, instanceId: string, alarmId: string): string {
    return `${this.t(tenantId)}:i:${instanceId}:alarm-history:${alarmId}`;
  }
  /** hash counter → count: an instance's usage in one hour (hours since the epoch), expiring */
  usage(tenantId: string, instanceId: string, hour: number): string {
    return `${this.t(tenantId)}:i:${instanceId}:usage:${hour}`;
  }
  /** zset instanceId → last hour (hours since the epoch) with usage: the instances a tenant's
   *  usage is read for, deleted ones included (their buckets outlive them), expiring */
  usageInstances(tenantId: string): string {
    return `${this.t(tenantId)}:usage-instances`;
  }
  /** zset flush marker → when applied (ms): the usage flushes applied lately, each at most once
   *  (add-usage-3.lua), kept ten minutes */
  usageMarkers(tenantId: string): string {
    return `${this.t(tenantId)}:usage-markers`;
  }
  /** set `<tenantId>/<instanceId>` of the instances that have (or had) alarms: what the
   *  evaluator walks, instead of every tenant */
  alarmInstances(): string {
    return `${this.prefix}:alarm-instances`;
  }
  /** string: the node holding the alarm evaluation lease (SET NX PX, renewed) */
  alarmLease(): string {
    return `${this.prefix}:alarm-lease`;
  }
  /** the key prefix of BullMQ's queues (webhook deliveries); one hash tag, as BullMQ needs on a
   *  Redis Cluster (a queue's scripts touch several of its keys) */
  jobs(): string {
    return `${this.prefix}:{jobs}`;
  }

  /** hash requestId → publish fence: calls a gateway gave up on and sent to another broker,
   *  for this broker to withdraw what it stored of them (applied, then deleted, by the broker) */
  publishFences(brokerId: number): string {
    return `${this.prefix}:{fences:${brokerId}}`;
  }

  /** pub/sub channel: a fence was left for the broker (the message is its request id) */
  publishFenceChannel(brokerId: number): string {
    return `${this.prefix}:{fences:${brokerId}}:added`;
  }

  /** hash `tenantId/instanceId/topic` → epoch ms until which keyed publishes of the topic moved
   *  off the broker may be repeated; the hash expires with its longest entry */
  dedupMoved(brokerId: number): string {
    return `${this.prefix}:{dedup-moved:${brokerId}}`;
  }

  /** string queueId, expiring with the topic's dedup window: where a keyed publish bound to a
   *  queue of the broker went while it was down */
  dedupMovedId(
    brokerId: number,
    tenantId: string,
    instanceId: string,
    topic: string,
    dedupId: string,
  ): string {
    return `${this.prefix}:{dedup-moved:${brokerId}}:${tenantId}/${instanceId}/${topic}/${dedupId}`;
  }

  /** hash dropId → pending drop: topics, groups and instances deleted while the broker was down,
   *  for it to drop when it is back (applied, then deleted, by the broker; no expiry) */
  pendingDrops(brokerId: number): string {
    return `${this.prefix}:{drops:${brokerId}}`;
  }

  /** hash `<brokerId>/<dropId>` → the name a pending drop deletes (droppedName): a tenant's
   *  drops waiting on brokers, by name, so the name is not created again before they are applied
   *  (written before the drop, deleted after it by the broker; a stale field is found out by its
   *  drop's absence and deleted) */
  droppingNames(tenantId: string): string {
    return `${this.t(tenantId)}:dropping`;
  }

  /** hash `topic <instanceId>/<topic>` or `group <instanceId>/<group>` (droppedName) → the
   *  deleted record's JSON: kept by the delete until its brokers have taken the drop, so a
   *  delete whose answer was lost is finished by the next DELETE or create of the name */
  deletedResources(tenantId: string): string {
    return `${this.t(tenantId)}:deleted`;
  }

  /** string claimant token, PX ttl: the call finishing the drop of a deleted record (its field
   *  in deletedResources), one at a time (claim-deleted-3.lua) */
  deletedClaim(tenantId: string, field: string): string {
    return `${this.t(tenantId)}:deleted:claim:${field}`;
  }

  /** pub/sub channel: a drop was left for the broker (the message is its drop id) */
  pendingDropChannel(brokerId: number): string {
    return `${this.prefix}:{drops:${brokerId}}:added`;
  }

  // A broker's delay wheel is the broker's, not a tenant's: it holds log positions and due times
  // only (no names, no bodies) and is rebuilt from the broker's commit log when lost.
  private wheel(brokerId: string): string {
    return `${this.prefix}:{wheel:${brokerId}}`;
  }
  /** zset hex logOffset → deliverAtMs: the broker's delayed messages not yet claimed */
  wheelPending(brokerId: string): string {
    return `${this.wheel(brokerId)}:pending`;
  }
  /** hash claim id → claimed batch `<logOffsetHex>,<deliverAtMs>,...` being dispatched */
  wheelClaims(brokerId: string): string {
    return `${this.wheel(brokerId)}:claims`;
  }
  /** zset claim id → lease deadline ms */
  wheelLeases(brokerId: string): string {
    return `${this.wheel(brokerId)}:leases`;
  }
  /** hash wheelId, scheduledLogOffset (high-water mark), state (building|ready), claimSeq */
  wheelMark(brokerId: string): string {
    return `${this.wheel(brokerId)}:mark`;
  }
}
