// The meta room's face: tenant metadata in Redis, the gateway's cached view of it, and the
// private redis-server used by the all-in-one node and the tests.

/** Redis-backed metadata with cached reads and cross-gateway invalidation. */
export {
  MetaStore,
  safeUrl,
  type MetaStoreOptions,
  type DeletedTenantInstance,
} from './meta-store.js';
/** Key builder: every Redis key Wharf uses. */
export { MetaKeys } from './keys.js';
/** AES-256-GCM sealing of secrets; HKDF derivation of sub-keys from the master key. */
export { SecretBox, deriveKey } from './secret-box.js';
export { TOKEN_ALG, type SigningKey } from './signing-keys.js';
export type { ResolvedAccessKey } from './access-keys.js';
export type { DeletedClaim, DropClaim, PutStatus } from './instance-resources.js';
export type { DeletedInstance } from './instances.js';
export * from './types.js';
export { TENANT_ID, INSTANCE_ID, ACCESS_KEY_ID } from './ids.js';
/** Whether an error means Redis cannot be reached (answer 503, not 500). */
export { isRedisUnavailable } from './redis-errors.js';
/** A private redis-server child (all-in-one node, tests). */
export { startRedisServer, freePort, type RedisServerHandle } from './redis-server.js';
/** The most alarms an instance may have (a creation past it is QuotaExceeded). */
export { MAX_ALARMS_PER_INSTANCE } from './alarms.js';
/** Alarm evaluation states and histories (capped). */
export { AlarmStateRepository, HISTORY_MAX, type AlarmInstance } from './alarm-states.js';
/** A lease in Redis: one holder at a time, renewed, lost after its TTL. */
export { RedisLease } from './lease.js';
/** Hourly usage buckets per instance. */
export {
  UsageRepository,
  USAGE_TTL_MS,
  MAX_USAGE_HOURS,
  type UsageDelta,
  type MarkedUsageDelta,
} from './usage.js';
/** A broker's delay wheel in Redis (the broker's ScheduleWheel): schedule, leased claims, mark. */
export {
  RedisScheduleWheel,
  type WheelClaim,
  type WheelEntry,
  type WheelMark,
} from './schedule-wheel.js';
/** Publish fences (cluster failover): a gateway leaves them, their broker applies and deletes them. */
export { RedisPublishFenceSink, RedisPublishFences } from './publish-fences.js';
export { RedisDedupRedirects } from './dedup-redirects.js';
/** Pending drops (cluster): a gateway leaves a deletion for a broker that is down; the broker
 *  applies it when back, then deletes it. */
export { RedisPendingDropSink, RedisPendingDrops } from './pending-drops.js';
/** The broker registry (cluster): a broker's lease on its id, a gateway's view of the brokers,
 *  and where each topic's queues live. */
export {
  BROKER_LEASE_TTL_MS,
  BrokerDirectory,
  BrokerLease,
  type BrokerDirectoryOptions,
  type BrokerEntry,
  type BrokerLeaseOptions,
} from './broker-registry.js';
export { QueuePlacements } from './placements.js';
