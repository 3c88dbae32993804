// Tenants: a record per tenant plus two operator indexes (all tenants by creation time, names).
// Names are unique across tenants. Deleting a tenant (MetaStore.deleteTenant) revokes its access
// keys first, so its credentials stop working, and removes its record last, so a deletion that
// failed midway can be run again.
import { WharfError } from '../errors.js';
import { newTenantId } from './ids.js';
import { TENANT, decodeRecord, encodeRecord } from './records.js';
import type { RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';
import { DEFAULT_QUOTAS, type Quotas, type Tenant, type TenantStatus } from './types.js';

export class TenantRepository {
  constructor(private readonly ctx: RepoContext) {}

  async create(name: string, quotas: Partial<Quotas> = {}, now = Date.now()): Promise<Tenant> {
    const { redis, keys } = this.ctx;
    const tenant: Tenant = {
      tenantId: newTenantId(),
      name,
      status: 'active',
      quotas: { ...DEFAULT_QUOTAS, ...quotas },
      createdAt: now,
    };
    try {
      // The record first: a name's holder then always has its record, so a creation that loses
      // the name can tell a live holder from a claim whose tenant is gone. Inside the try: a
      // write past its deadline (Redis stalled) may still be run once Redis answers, and the
      // removal below, sent after it on the same connection, runs after it: a 503 leaves no
      // tenant behind (one the retry would list beside its own, under the same name).
      await redis
        .multi()
        .set(keys.tenant(tenant.tenantId), encodeRecord(tenant))
        .zadd(keys.tenants(), now, tenant.tenantId)
        .exec();
      if ((await redis.hsetnx(keys.tenantNames(), name, tenant.tenantId)) === 0) {
        const holder = await redis.hget(keys.tenantNames(), name);
        if (holder !== null && (await redis.exists(keys.tenant(holder))) === 1) {
          throw new WharfError('AlreadyExists', `a tenant named ${name} exists`);
        }
        // a claim without its tenant is taken over, unless another creation took it meanwhile
        const taken = await this.ctx.scripts.run(
          'claim-tenant-name',
          [keys.tenantNames()],
          [name, holder ?? '', tenant.tenantId],
        );
        if (taken !== 1) throw new WharfError('AlreadyExists', `a tenant named ${name} exists`);
      }
    } catch (error) {
      await redis
        .multi()
        .del(keys.tenant(tenant.tenantId))
        .zrem(keys.tenants(), tenant.tenantId)
        .exec()
        .catch(() => undefined);
      throw error;
    }
    return tenant;
  }

  async get(tenantId: string): Promise<Tenant | null> {
    const key = this.ctx.keys.tenant(tenantId);
    const json = await this.ctx.redis.get(key);
    return json === null ? null : decodeRecord(TENANT, json, { key });
  }

  async list(): Promise<Tenant[]> {
    const { redis, keys } = this.ctx;
    const ids = await redis.zrange(keys.tenants(), '0', '-1');
    if (ids.length === 0) return [];
    const tenantKeys = ids.map((id) => keys.tenant(id));
    const jsons = await redis.mget(...tenantKeys);
    const tenants: Tenant[] = [];
    jsons.forEach((json, i) => {
      if (json !== null) tenants.push(decodeRecord(TENANT, json, { key: tenantKeys[i] }));
    });
    return tenants;
  }

  async patch(
    tenantId: string,
    change: { status?: TenantStatus; quotas?: Partial<Quotas> },
  ): Promise<Tenant> {
    const key = this.ctx.keys.tenant(tenantId);
    const result = await this.ctx.scripts.run(
      'patch-tenant',
      [key],
      [change.status ?? '', change.quotas === undefined ? '' : JSON.stringify(change.quotas)],
    );
    if (typeof result === 'number') throw scriptError(result, `tenant ${tenantId}`);
    return decodeRecord(TENANT, result as string, { key });
  }

  /** Removes the record and the indexes; the caller then removes what the tenant owned. */
  async delete(tenantId: string): Promise<Tenant | null> {
    const { redis, keys } = this.ctx;
    const tenant = await this.get(tenantId);
    if (tenant === null) return null;
    await redis
      .multi()
      .del(keys.tenant(tenantId))
      .zrem(keys.tenants(), tenantId)
      .hdel(keys.tenantNames(), tenant.name)
      .exec();
    return tenant;
  }

  /** Drops the tenant's remaining keys (after its instances and access keys are gone). */
  async purge(tenantId: string): Promise<void> {
    const { redis, keys } = this.ctx;
    await redis.del(
      keys.accessKeys(tenantId),
      keys.counts(tenantId),
      keys.instances(tenantId),
      keys.instanceNames(tenantId),
      keys.deletedResources(tenantId),
    );
  }
}
