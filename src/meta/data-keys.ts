// Per-instance data keys of sealed message bodies (crypto-shredding). A key is 32 random bytes,
// kept in Redis only sealed under WHARF_MASTER_KEY (SecretBox, bound to tenant and instance) and
// deleted with its instance: then no copy of the instance's bodies opens, on any disk, ever.
// Made with its instance (lua/create-instance-4.lua), so a Redis backup that holds an instance
// holds its key; for an instance created before that, at its first publish: at most once (SET NX),
// so concurrent first publishes agree on one key, and only while the instance exists
// (lua/create-data-key-2.lua; delete-instance removes the key).
import { randomBytes } from 'node:crypto';
import { WharfError } from '../errors.js';
import type { RepoContext } from './repo-context.js';
import { isRedisUnavailable } from './redis-errors.js';
import { scriptError } from './scripts.js';
import type { SecretBox } from './secret-box.js';

const DATA_KEY_BYTES = 32;

function dataKeyContext(tenantId: string, instanceId: string): string {
  return `data-key/${tenantId}/${instanceId}`;
}

export class DataKeyRepository {
  constructor(
    private readonly ctx: RepoContext,
    private readonly box: SecretBox,
  ) {}

  /** A new key for the instance, sealed as it is kept (the instance's creation stores one). */
  sealNew(tenantId: string, instanceId: string): string {
    return this.box.seal(
      randomBytes(DATA_KEY_BYTES).toString('base64'),
      dataKeyContext(tenantId, instanceId),
    );
  }

  /** The instance's key; with `create`, made when there is none (an instance created before
   *  keys came with it). Null: there is none. */
  async load(tenantId: string, instanceId: string, create: boolean): Promise<Buffer | null> {
    try {
      return await this.loadOrCreate(tenantId, instanceId, create);
    } catch (error) {
      // the broker calls this on a publish or a receive: its caller gets a 503 to retry, not 500
      if (!isRedisUnavailable(error)) throw error;
      throw new WharfError('Unavailable', 'the metadata store is unreachable; retry shortly', {
        retryAfterMs: 1000,
        cause: error,
      });
    }
  }

  private async loadOrCreate(
    tenantId: string,
    instanceId: string,
    create: boolean,
  ): Promise<Buffer | null> {
    const { redis, keys, scripts } = this.ctx;
    const redisKey = keys.dataKey(tenantId, instanceId);
    const context = dataKeyContext(tenantId, instanceId);
    let sealed: string | null;
    if (create) {
      const fresh = this.sealNew(tenantId, instanceId);
      const answer = await scripts.run(
        'create-data-key',
        [keys.instances(tenantId), redisKey],
        [instanceId, fresh],
      );
      if (typeof answer === 'number') throw scriptError(answer, `instance ${instanceId}`);
      sealed = typeof answer === 'string' ? answer : null;
    } else {
      sealed = await redis.get(redisKey);
    }
    if (sealed === null) return null;
    const key = Buffer.from(this.box.open(sealed, context), 'base64');
    if (key.length !== DATA_KEY_BYTES)
      throw new WharfError('Internal', `the data key of instance ${instanceId} is malformed`);
    return key;
  }
}
