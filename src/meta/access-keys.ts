// Access keys: stored under their tenant with the secret sealed (AES-256-GCM, the key id as
// AAD), plus a global index id → tenant, since a request names only the key id. A key works
// only while both exist; revocation deletes the index entry first.
import { newAccessKeyId, newAccessKeySecret } from './ids.js';
import { ACCESS_KEY, encodeRecord } from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';
import type { SecretBox } from './secret-box.js';
import type { AccessKeyRecord, AccessKeyView, Permission } from './types.js';

export interface ResolvedAccessKey extends AccessKeyView {
  secret: string;
}

export class AccessKeyRepository {
  constructor(
    private readonly ctx: RepoContext,
    private readonly box: SecretBox,
  ) {}

  async create(
    tenantId: string,
    permissions: Permission[],
    description?: string,
    now = Date.now(),
  ): Promise<ResolvedAccessKey> {
    const { redis, keys, scripts } = this.ctx;
    const accessKeyId = newAccessKeyId();
    const secret = newAccessKeySecret();
    const record: AccessKeyRecord = {
      accessKeyId,
      tenantId,
      ...(description === undefined ? {} : { description }),
      permissions,
      createdAt: now,
      sealedSecret: this.box.seal(secret, accessKeyId),
    };
    try {
      const result = await scripts.run(
        'create-access-key',
        [keys.tenant(tenantId), keys.accessKeys(tenantId)],
        [accessKeyId, encodeRecord(record)],
      );
      if (result !== 1) throw scriptError(result as number, `tenant ${tenantId}`);
      await redis.hset(keys.accessKeyIndex(), accessKeyId, tenantId);
    } catch (error) {
      // a write past its deadline may still be run once Redis answers: these removals, sent
      // after it on the same connection, run after it, so a 503 leaves no key whose secret
      // nobody was shown
      await Promise.all([
        redis.hdel(keys.accessKeyIndex(), accessKeyId),
        redis.hdel(keys.accessKeys(tenantId), accessKeyId),
      ]).catch(() => undefined);
      throw error;
    }
    return { ...view(record), secret };
  }

  async list(tenantId: string): Promise<AccessKeyView[]> {
    const records = await readHashRecords(this.ctx, ACCESS_KEY, this.ctx.keys.accessKeys(tenantId));
    return records
      .map(view)
      .sort((a, b) => a.createdAt - b.createdAt || a.accessKeyId.localeCompare(b.accessKeyId));
  }

  /** The key with its secret opened, or null when unknown or revoked. */
  async resolve(accessKeyId: string): Promise<ResolvedAccessKey | null> {
    const { redis, keys } = this.ctx;
    const tenantId = await redis.hget(keys.accessKeyIndex(), accessKeyId);
    if (tenantId === null) return null;
    const record = await readHashRecord(
      this.ctx,
      ACCESS_KEY,
      keys.accessKeys(tenantId),
      accessKeyId,
    );
    if (record === null) return null;
    return { ...view(record), secret: this.box.open(record.sealedSecret, accessKeyId) };
  }

  async revoke(tenantId: string, accessKeyId: string): Promise<boolean> {
    const { redis, keys } = this.ctx;
    const owner = await redis.hget(keys.accessKeyIndex(), accessKeyId);
    if (owner !== tenantId) return false;
    await redis.hdel(keys.accessKeyIndex(), accessKeyId);
    return (await redis.hdel(keys.accessKeys(tenantId), accessKeyId)) === 1;
  }

  /** Revokes every key of a tenant; returns their ids. */
  async revokeAll(tenantId: string): Promise<string[]> {
    const { redis, keys } = this.ctx;
    const ids = await redis.hkeys(keys.accessKeys(tenantId));
    if (ids.length > 0) await redis.hdel(keys.accessKeyIndex(), ...ids);
    await redis.del(keys.accessKeys(tenantId));
    return ids;
  }
}

function view(record: AccessKeyRecord): AccessKeyView {
  const { sealedSecret: _sealed, ...rest } = record;
  return rest;
}
