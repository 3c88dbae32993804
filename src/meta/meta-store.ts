// The meta room's face for the gateway: the repositories, plus cached reads of what every
// request needs (credential, tenant, instance, topic, group) and invalidation of those caches on
// every gateway through Redis pub/sub. Writes go through here so that each one invalidates
// locally before it answers (read-your-writes on the same gateway) and publishes the same
// prefixes to the others. Entries also expire on their own (ttlMs, default 4 s), so a lost
// pub/sub message delays a change by at most that; after a subscriber reconnect the whole cache
// is dropped, since messages may have been missed. Every Redis call has a deadline
// (`commandTimeoutMs`) and nothing waits for a connection that is down (no offline queue, no
// retries): while Redis is unreachable a request that needs it fails at once with a retriable
// error (503), requests served from the cache go on, and the clients reconnect on their own.
import type { Redis, RedisOptions } from 'ioredis';
import { WharfError } from '../errors.js';
import { DeadlineRedis } from './deadline-redis.js';
import { AccessKeyRepository, type ResolvedAccessKey } from './access-keys.js';
import { AlarmRepository } from './alarms.js';
import {
  BrokerDirectory,
  BrokerLease,
  type BrokerDirectoryOptions,
  type BrokerLeaseOptions,
} from './broker-registry.js';
import { QueuePlacements } from './placements.js';
import { AlarmStateRepository } from './alarm-states.js';
import { UsageRepository } from './usage.js';
import { TtlCache } from './cache.js';
import { GroupRepository } from './groups.js';
import { InstanceRepository, type DeletedInstance } from './instances.js';
import { brokersDropping } from './pending-drops.js';
import { namedDrop } from '../model/index.js';
import { MetaKeys } from './keys.js';
import type { RepoContext } from './repo-context.js';
import { ScriptRunner } from './scripts.js';
import { RedisDedupRedirects } from './dedup-redirects.js';
import { SecretBox } from './secret-box.js';
import { DataKeyRepository } from './data-keys.js';
import { SigningKeyRepository } from './signing-keys.js';
import { TenantRepository } from './tenants.js';
import { TopicRepository } from './topics.js';
import type { DeletedClaim, DropClaim, PutStatus } from './instance-resources.js';
import type {
  AccessKeyView,
  GroupRecord,
  Instance,
  Permission,
  Quotas,
  Tenant,
  TenantStatus,
  TopicRecord,
} from './types.js';

export interface MetaLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MetaStoreOptions {
  redisUrl: string;
  masterKey: Buffer | string;
  keyPrefix?: string;
  /** How long cached metadata and credentials are served without Redis (default 4000). */
  cacheTtlMs?: number;
  /** Deadline of each Redis command (default 1000): past it the command fails as unavailable. */
  commandTimeoutMs?: number;
  logger?: MetaLogger;
}

/** One instance of a tenant being deleted: its data key is gone, the brokers drop the rest. */
export interface DeletedTenantInstance {
  instanceId: string;
  topics: TopicRecord[];
  groups: GroupRecord[];
}

const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const RECONNECT_MAX_DELAY_MS = 1000;
/** How long /readyz waits for PING: it must fail fast, not wait for a command's deadline. */
export const PING_TIMEOUT_MS = 500;
/** Instances of a tenant being deleted whose broker drops run at once. */
const DROPS_IN_FLIGHT = 8;
/** How long a call holds the finishing of a delete (claim-deleted-3.lua): a drop answers well
 *  inside it, and one whose gateway died frees the name after it. */
const DELETED_CLAIM_MS = 60_000;

const k = {
  credential: (akid: string) => `ak|${akid}|`,
  tenant: (tid: string) => `t|${tid}|`,
  instance: (tid: string, iid: string) => `i|${tid}|${iid}|`,
  instanceList: (tid: string) => `il|${tid}|`,
  topic: (tid: string, iid: string, name: string) => `tp|${tid}|${iid}|${name}|`,
  topicList: (tid: string, iid: string) => `tl|${tid}|${iid}|`,
  topicsOf: (tid: string, iid: string) => `tp|${tid}|${iid}|`,
  group: (tid: string, iid: string, name: string) => `g|${tid}|${iid}|${name}|`,
  groupList: (tid: string, iid: string) => `gl|${tid}|${iid}|`,
  groupsOf: (tid: string, iid: string) => `g|${tid}|${iid}|`,
  signingKeys: () => `jwks|`,
};

/** What the master-key check seals (and its context). */
const MASTER_KEY_CHECK = 'wharf-master-key-check';
export class MetaStore {
  readonly tenants: TenantRepository;
  readonly accessKeys: AccessKeyRepository;
  readonly instances: InstanceRepository;
  readonly topics: TopicRepository;
  readonly groups: GroupRepository;
  readonly signingKeys: SigningKeyRepository;
  readonly alarms: AlarmRepository;
  /** Alarm evaluation states, histories and the instances to evaluate. */
  readonly alarmStates: AlarmStateRepository;
  /** Hourly usage counters per instance. */
  readonly usage: UsageRepository;
  /** What the lease helpers need (src/meta/lease.ts). */
  readonly repoContext: RepoContext;
  /** Per-instance data keys of sealed bodies (the brokers' DataKeySource). */
  readonly dataKeys: DataKeyRepository;
  private readonly box: SecretBox;
  readonly keys: MetaKeys;
  /** Where each topic's queues live (cluster). */
  readonly placements: QueuePlacements;
  private readonly ctx: RepoContext;
  private readonly cache: TtlCache;
  private subscriberReady = false;
  private closed = false;

  private constructor(
    readonly redis: Redis,
    private readonly subscriber: Redis,
    options: MetaStoreOptions,
    private readonly logger: MetaLogger | undefined,
  ) {
    this.keys = new MetaKeys(options.keyPrefix);
    const ctx: RepoContext = { redis, keys: this.keys, scripts: new ScriptRunner(redis) };
    this.ctx = ctx;
    this.placements = new QueuePlacements(ctx);
    const box = new SecretBox(options.masterKey);
    this.box = box;
    this.tenants = new TenantRepository(ctx);
    this.accessKeys = new AccessKeyRepository(ctx, box);
    this.topics = new TopicRepository(ctx);
    this.groups = new GroupRepository(ctx);
    this.signingKeys = new SigningKeyRepository(ctx, box);
    this.alarms = new AlarmRepository(ctx, box);
    this.alarmStates = new AlarmStateRepository(ctx);
    this.usage = new UsageRepository(ctx);
    this.repoContext = ctx;
    this.dataKeys = new DataKeyRepository(ctx, box);
    this.instances = new InstanceRepository(ctx, this.dataKeys);
    const ttlMs = options.cacheTtlMs ?? 4000;
    this.cache = new TtlCache({
      ttlMs,
      negativeTtlMs: Math.min(ttlMs, 1000),
      maxEntries: 100_000,
    });
  }

  /** Connects (command and subscriber connections) and subscribes to invalidations. */
  /**
   * Whether this process's master key is the one the metadata was sealed with: a value sealed at
   * the first start is opened. A process with another key would answer every signed call 500
   * (no secret opens); false says so at start.
   */
  async masterKeyOpensMetadata(): Promise<boolean> {
    const key = this.keys.masterKeyCheck();
    await this.redis.set(key, this.box.seal(MASTER_KEY_CHECK, MASTER_KEY_CHECK), 'NX');
    const sealed = await this.redis.get(key);
    if (sealed === null) return true; // flushed meanwhile: sealed again at the next start
    try {
      return this.box.open(sealed, MASTER_KEY_CHECK) === MASTER_KEY_CHECK;
    } catch {
      return false;
    }
  }

  static async open(options: MetaStoreOptions): Promise<MetaStore> {
    const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      // A command issued while the connection is down fails at once instead of queueing, and one
      // in flight when it drops is not resent: the caller answers 503 and the client retries.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A stalled server (SIGSTOP, DEBUG SLEEP, a dead host without RST) keeps the socket open:
      // each command gives up after its deadline, and a socket that stays silent with commands
      // pending is dropped, so the following commands fail at once until a reconnect succeeds
      // (DeadlineRedis: deadlines that a stalled event loop does not trip).
      connectTimeout: Math.max(1000, commandTimeoutMs),
      // Reconnect quickly (a returning Redis is used within a second), never giving up.
      retryStrategy: (times: number) => Math.min(100 * times, RECONNECT_MAX_DELAY_MS),
    };
    const redis = new DeadlineRedis(
      options.redisUrl,
      { ...redisOptions, connectionName: 'wharf-meta' },
      commandTimeoutMs,
    );
    const subscriber = new DeadlineRedis(
      options.redisUrl,
      { ...redisOptions, connectionName: 'wharf-meta-sub' },
      commandTimeoutMs,
    );
    const store = new MetaStore(redis, subscriber, options, options.logger);
    store.reportOutages(redis, 'commands');
    try {
      await redis.connect();
      await store.subscribe();
    } catch (cause) {
      redis.disconnect();
      subscriber.disconnect();
      throw new WharfError('Unavailable', `cannot reach Redis at ${safeUrl(options.redisUrl)}`, {
        cause,
      });
    }
    return store;
  }

  private async subscribe(): Promise<void> {
    const channel = this.keys.invalidationChannel();
    this.reportOutages(this.subscriber, 'invalidations');
    // The message format, v1: a JSON array of cache-key prefixes. A later version will be a JSON
    // object with its `v`; anything this gateway does not read drops its whole cache (safe).
    this.subscriber.on('message', (_channel: string, message: string) => {
      let prefixes: unknown;
      try {
        prefixes = JSON.parse(message);
      } catch {
        prefixes = undefined;
      }
      if (Array.isArray(prefixes) && prefixes.every((p) => typeof p === 'string')) {
        this.cache.invalidate(prefixes);
      } else {
        this.cache.clear();
      }
    });
    this.subscriber.on('close', () => {
      this.subscriberReady = false;
    });
    this.subscriber.on('ready', () => {
      // Invalidations published while we were away are lost: forget everything.
      if (!this.subscriberReady) this.cache.clear();
      this.subscriberReady = true;
    });
    await this.subscriber.connect();
    await this.subscriber.subscribe(channel);
    this.subscriberReady = true;
  }

  /**
   * One warning when a connection is lost and one line when it is back (with how long it was
   * away), rather than an error line per reconnect attempt for the length of an outage.
   */
  private reportOutages(connection: Redis, role: 'commands' | 'invalidations'): void {
    let lostAt: number | undefined;
    connection.on('error', (err: Error) => {
      if (lostAt !== undefined || this.closed) return;
      lostAt = Date.now();
      this.logger?.warn(
        { err: err.message, connection: role },
        'Redis unreachable: requests that need it answer 503 until it is back (reconnecting)',
      );
    });
    connection.on('ready', () => {
      if (lostAt === undefined) return;
      this.logger?.info({ connection: role, downMs: Date.now() - lostAt }, 'Redis reachable again');
      lostAt = undefined;
    });
  }

  /** A broker claims its id in the registry (Conflict when a live broker holds it). */
  claimBrokerId(options: BrokerLeaseOptions): Promise<BrokerLease> {
    return BrokerLease.claim(this.redis, this.keys, this.ctx.scripts, {
      logger: this.logger,
      ...options,
    });
  }

  /** Where a gateway remembers keyed publishes it moved off a down broker. */
  dedupRedirects(): RedisDedupRedirects {
    return new RedisDedupRedirects(this.redis, this.keys, this.ctx.scripts);
  }

  /** A gateway's live view of the broker registry. */
  openBrokerDirectory(options: BrokerDirectoryOptions = {}): Promise<BrokerDirectory> {
    return BrokerDirectory.open(this.redis, this.keys, { logger: this.logger, ...options });
  }

  /** Invalidates here, then on every other gateway. */
  async invalidate(prefixes: string[]): Promise<void> {
    this.cache.invalidate(prefixes);
    await this.redis.publish(this.keys.invalidationChannel(), JSON.stringify(prefixes));
  }

  /**
   * Resolves when Redis answers PING within `timeoutMs` and the invalidation subscriber is
   * connected (without it, changes made on other gateways would only show after the cache TTL).
   */
  async ping(timeoutMs = PING_TIMEOUT_MS): Promise<void> {
    if (!this.subscriberReady) {
      throw new WharfError('Unavailable', 'the Redis invalidation subscriber is not connected');
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      // looked at once more after the waiting replies are read (as DeadlineRedis does): a PONG
      // that came while the event loop stood still answers the ping
      timer = setTimeout(
        () =>
          setImmediate(() =>
            reject(new WharfError('Unavailable', `Redis did not answer PING in ${timeoutMs} ms`)),
          ),
        timeoutMs,
      );
    });
    const ping = this.redis.ping();
    // Lost the race: its own command deadline settles it later, unobserved.
    ping.catch(() => undefined);
    try {
      await Promise.race([ping, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await Promise.allSettled([this.subscriber.quit(), this.redis.quit()]);
    // QUIT fails while Redis is away; disconnect stops the reconnect attempts in any case.
    this.subscriber.disconnect();
    this.redis.disconnect();
  }

  // ---- cached reads (hot path) ----

  credential(accessKeyId: string): Promise<ResolvedAccessKey | null> {
    return this.cache.get(k.credential(accessKeyId), () => this.accessKeys.resolve(accessKeyId));
  }
  tenant(tenantId: string): Promise<Tenant | null> {
    return this.cache.get(k.tenant(tenantId), () => this.tenants.get(tenantId));
  }
  /** Whether the cache holds the instance as the tenant's (no Redis call: undefined when the
   *  cache does not know). */
  cachedInstanceExists(tenantId: string, instanceId: string): boolean | undefined {
    const value = this.cache.peek(k.instance(tenantId, instanceId));
    return value === undefined ? undefined : value !== null;
  }

  instance(tenantId: string, instanceId: string): Promise<Instance | null> {
    return this.cache.get(k.instance(tenantId, instanceId), () =>
      this.instances.get(tenantId, instanceId),
    );
  }
  instanceList(tenantId: string): Promise<Instance[]> {
    return this.cache.get(k.instanceList(tenantId), () => this.instances.list(tenantId));
  }
  topic(tenantId: string, instanceId: string, name: string): Promise<TopicRecord | null> {
    return this.cache.get(k.topic(tenantId, instanceId, name), () =>
      this.topics.get(tenantId, instanceId, name),
    );
  }
  topicList(tenantId: string, instanceId: string): Promise<TopicRecord[]> {
    return this.cache.get(k.topicList(tenantId, instanceId), () =>
      this.topics.list(tenantId, instanceId),
    );
  }
  group(tenantId: string, instanceId: string, name: string): Promise<GroupRecord | null> {
    return this.cache.get(k.group(tenantId, instanceId, name), () =>
      this.groups.get(tenantId, instanceId, name),
    );
  }
  groupList(tenantId: string, instanceId: string): Promise<GroupRecord[]> {
    return this.cache.get(k.groupList(tenantId, instanceId), () =>
      this.groups.list(tenantId, instanceId),
    );
  }
  publicSigningKeys() {
    return this.cache.get(k.signingKeys(), () => this.signingKeys.publicKeys());
  }

  // ---- writes, each followed by its invalidation ----

  async patchTenant(
    tenantId: string,
    change: { status?: TenantStatus; quotas?: Partial<Quotas> },
  ): Promise<Tenant> {
    const tenant = await this.tenants.patch(tenantId, change);
    await this.invalidate([k.tenant(tenantId)]);
    return tenant;
  }

  /**
   * Deletes the tenant and everything it owns. Resumable: its access keys go first (nothing of
   * it can be called any more), then each instance, handed to `instanceDeleted` (the brokers
   * drop it: its data key is gone; up to DROPS_IN_FLIGHT instances' drops at once, so a broker
   * that answers slowly costs its deadline a few times, not once an instance), then the
   * tenant's record — a failure before that (Redis timing out, a drop that threw) leaves the
   * tenant there, and deleting it again finishes the work. Null when there is no such tenant.
   */
  async deleteTenant(
    tenantId: string,
    instanceDeleted: (deleted: DeletedTenantInstance) => Promise<void>,
  ): Promise<Tenant | null> {
    const tenant = await this.tenants.get(tenantId);
    if (tenant === null) return null;
    const keyIds = await this.accessKeys.revokeAll(tenantId);
    await this.invalidate([k.tenant(tenantId), ...keyIds.map(k.credential)]);
    const deleteInstances = async (): Promise<void> => {
      const instances = (await this.instances.list(tenantId))[Symbol.iterator]();
      // DROPS_IN_FLIGHT workers take the instances from one iterator
      const worker = async (): Promise<void> => {
        for (const instance of instances) {
          const deleted = await this.deleteInstance(tenantId, instance.instanceId);
          await instanceDeleted({
            instanceId: instance.instanceId,
            topics: deleted?.topics ?? [],
            groups: deleted?.groups ?? [],
          });
        }
      };
      const workers = await Promise.allSettled(Array.from({ length: DROPS_IN_FLIGHT }, worker));
      const failed = workers.find((w) => w.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    };
    await deleteInstances();
    await this.tenants.delete(tenantId);
    // once the record is gone no instance can be created under the tenant: one that a call
    // authenticated before the keys went created meanwhile is deleted now
    await deleteInstances();
    await this.tenants.purge(tenantId);
    await this.invalidate(tenantPrefixes(tenantId));
    return tenant;
  }

  async createAccessKey(tenantId: string, permissions: Permission[], description?: string) {
    const key = await this.accessKeys.create(tenantId, permissions, description);
    await this.invalidate([k.credential(key.accessKeyId)]);
    return key;
  }

  async revokeAccessKey(tenantId: string, accessKeyId: string): Promise<boolean> {
    const revoked = await this.accessKeys.revoke(tenantId, accessKeyId);
    await this.invalidate([k.credential(accessKeyId)]);
    return revoked;
  }

  async listAccessKeys(tenantId: string): Promise<AccessKeyView[]> {
    return this.accessKeys.list(tenantId);
  }

  async createInstance(tenantId: string, name: string): Promise<Instance> {
    const instance = await this.instances.create(tenantId, name);
    await this.invalidate([k.instance(tenantId, instance.instanceId), k.instanceList(tenantId)]);
    return instance;
  }

  async deleteInstance(tenantId: string, instanceId: string): Promise<DeletedInstance | null> {
    const deleted = await this.instances.delete(tenantId, instanceId);
    // the deleted records of its topics and groups: no name of it is ever created again (an
    // instance id is never reused), and the instance's drop takes what they would drop
    await this.topics.forgetAllDeleted(tenantId, instanceId);
    await this.invalidate(instancePrefixes(tenantId, instanceId));
    return deleted;
  }

  /** Refuses with Unavailable while a broker that was down (or failed the drop) has yet to apply
   *  the drop of a deleted topic or group of this name (meta/pending-drops.ts): created again now, the late
   *  drop would delete the new one's messages or cursors on that broker. */
  async refuseWhileDropping(
    tenantId: string,
    instanceId: string,
    kind: 'topic' | 'group',
    name: string,
  ): Promise<void> {
    const brokers = await brokersDropping(
      this.redis,
      this.keys,
      tenantId,
      namedDrop(kind, instanceId, name),
    );
    if (brokers.length > 0) {
      throw new WharfError(
        'Unavailable',
        `the ${kind} deleted under this name is still to be dropped on broker ` +
          `${brokers.join(', ')} (down, or its disk full, when it was deleted): create it again ` +
          'once that broker has applied the drop',
        { retryAfterMs: 5000 },
      );
    }
  }

  async putTopic(topic: TopicRecord): Promise<{ status: PutStatus; record: TopicRecord }> {
    const { tenantId, instanceId, topic: name } = topic;
    const result = await this.topics.put(tenantId, instanceId, name, topic);
    if (result.status !== 'unchanged') {
      await this.invalidate([
        k.topic(tenantId, instanceId, name),
        k.topicList(tenantId, instanceId),
      ]);
    }
    return result;
  }

  async deleteTopic(tenantId: string, instanceId: string, name: string) {
    const deleted = await this.topics.delete(tenantId, instanceId, name);
    await this.invalidate([k.topic(tenantId, instanceId, name), k.topicList(tenantId, instanceId)]);
    return deleted;
  }

  /** Claims the finishing of a deleted topic's drop: its DELETE's answer was lost (the script
   *  ran after its deadline), the gateway stopped before the drop, or another call is at it. */
  claimDeletedTopic(
    tenantId: string,
    instanceId: string,
    name: string,
  ): Promise<DeletedClaim<TopicRecord>> {
    return this.topics.claimDeleted(tenantId, instanceId, name, DELETED_CLAIM_MS);
  }

  /** As claimDeletedTopic, for a group. */
  claimDeletedGroup(
    tenantId: string,
    instanceId: string,
    name: string,
  ): Promise<DeletedClaim<GroupRecord>> {
    return this.groups.claimDeleted(tenantId, instanceId, name, DELETED_CLAIM_MS);
  }

  /** Forgets a deleted topic's or group's record once its brokers took (or were left) the drop
   *  made under `claim`; without one, at once (the name exists again). False: another call
   *  claimed it since and forgets it itself. */
  forgetDeleted(
    kind: 'topic' | 'group',
    tenantId: string,
    instanceId: string,
    name: string,
    claim?: DropClaim,
  ): Promise<boolean> {
    return (kind === 'topic' ? this.topics : this.groups).forgetDeleted(
      tenantId,
      instanceId,
      name,
      claim,
    );
  }

  /** Gives back a claim whose drop failed (the record stays for the next DELETE or create). */
  releaseDeletedClaim(
    kind: 'topic' | 'group',
    tenantId: string,
    instanceId: string,
    name: string,
    claim: DropClaim,
  ): Promise<void> {
    const repository = kind === 'topic' ? this.topics : this.groups;
    return repository.releaseDeletedClaim(tenantId, instanceId, name, claim);
  }

  async putGroup(group: GroupRecord): Promise<{ status: PutStatus; record: GroupRecord }> {
    const { tenantId, instanceId, group: name } = group;
    const result = await this.groups.put(tenantId, instanceId, name, group);
    if (result.status !== 'unchanged') {
      await this.invalidate([
        k.group(tenantId, instanceId, name),
        k.groupList(tenantId, instanceId),
      ]);
    }
    return result;
  }

  async deleteGroup(tenantId: string, instanceId: string, name: string) {
    const deleted = await this.groups.delete(tenantId, instanceId, name);
    await this.invalidate([k.group(tenantId, instanceId, name), k.groupList(tenantId, instanceId)]);
    return deleted;
  }
}

function instancePrefixes(tenantId: string, instanceId: string): string[] {
  return [
    k.instance(tenantId, instanceId),
    k.instanceList(tenantId),
    k.topicsOf(tenantId, instanceId),
    k.topicList(tenantId, instanceId),
    k.groupsOf(tenantId, instanceId),
    k.groupList(tenantId, instanceId),
  ];
}

function tenantPrefixes(tenantId: string): string[] {
  return ['t', 'i', 'il', 'tp', 'tl', 'g', 'gl'].map((kind) => `${kind}|${tenantId}|`);
}

/** The URL without its password, for messages. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}
