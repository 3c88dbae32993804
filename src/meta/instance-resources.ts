// The shared shape of topics and groups: records in a hash per instance, an idempotent PUT that
// checks the tenant's count quota atomically (put-resource-5.lua), and deletes that give the
// count back. Each record stores `spec`, the canonical JSON of its settable fields, so the
// script can tell "unchanged" from "updated" without re-encoding JSON in Lua; reading drops it.
import { randomBytes } from 'node:crypto';
import { WharfError } from '../errors.js';
import { namedDrop } from '../model/index.js';
import { decodeRecord, encodeRecord, type RecordSchema } from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';

export type PutStatus = 'created' | 'unchanged' | 'updated';

/** Whether a call may finish a delete's drop (claim-deleted-3.lua): `claimed` with the deleted
 *  record (drop it, then forgetDeleted with the claim); `none`: no deleted record is kept;
 *  `live`: the name exists again (created by a gateway of an earlier version); `busy`: another
 *  call is finishing it. */
export type DeletedClaim<T> =
  { status: 'claimed'; record: T; claim: DropClaim } | { status: 'none' | 'live' | 'busy' };

/** What forgetDeleted needs of a claim: its token and the record JSON that was dropped. */
export interface DropClaim {
  token: string;
  json: string;
}

const PUT_STATUS: Record<number, PutStatus> = { 1: 'created', 0: 'unchanged', 2: 'updated' };

/** put-resource-5.lua's answer while a deleted record of the name is kept. */
const DELETE_UNFINISHED = -8;

export interface ResourceKind<T> {
  /** `topics` or `groups`: the counter field and the noun in messages. */
  counter: 'topics' | 'groups';
  quota: 'maxTopics' | 'maxGroups';
  immutableField: string;
  immutableCode: number;
  growOnlyField: string;
  /** Whether, for this record, the grow-only field may not change at all. */
  fixedWhen?: (record: T) => boolean;
  noun: string;
  /** The record's format (records.ts). */
  schema: RecordSchema<T>;
}

export abstract class InstanceResourceRepository<T extends { createdAt: number }> {
  constructor(
    protected readonly ctx: RepoContext,
    private readonly kind: ResourceKind<T>,
  ) {}

  protected abstract hashKey(tenantId: string, instanceId: string): string;
  protected abstract spec(record: T): string;

  async put(
    tenantId: string,
    instanceId: string,
    name: string,
    record: T,
  ): Promise<{ status: PutStatus; record: T }> {
    const { keys, scripts } = this.ctx;
    const spec = this.spec(record);
    const result = await scripts.run(
      'put-resource',
      [
        keys.tenant(tenantId),
        keys.instances(tenantId),
        this.hashKey(tenantId, instanceId),
        keys.counts(tenantId),
        keys.deletedResources(tenantId),
      ],
      [
        instanceId,
        name,
        encodeRecord({ ...record, spec }),
        this.kind.counter,
        this.kind.quota,
        this.kind.immutableField,
        this.kind.immutableCode,
        spec,
        this.kind.growOnlyField,
        this.kind.fixedWhen?.(record) === true ? '1' : '',
        this.deletedField(instanceId, name),
      ],
    );
    if (result === DELETE_UNFINISHED) {
      throw new WharfError(
        'Unavailable',
        `the ${this.kind.noun} deleted under this name is still being dropped: create it again shortly`,
        { retryAfterMs: 1000 },
      );
    }
    if (typeof result === 'number') throw scriptError(result, `${this.kind.noun} ${name}`);
    const [status, json] = result as [number, string];
    const key = this.hashKey(tenantId, instanceId);
    return { status: PUT_STATUS[status], record: this.parse(json, key, name) };
  }

  async get(tenantId: string, instanceId: string, name: string): Promise<T | null> {
    return readHashRecord(this.ctx, this.kind.schema, this.hashKey(tenantId, instanceId), name);
  }

  async list(tenantId: string, instanceId: string): Promise<T[]> {
    const key = this.hashKey(tenantId, instanceId);
    const records = await readHashRecords(this.ctx, this.kind.schema, key);
    return records.sort((a, b) => this.order(a, b));
  }

  /** Deletes the record, keeping it among the deleted ones (deleted()) until forgotten. */
  async delete(tenantId: string, instanceId: string, name: string): Promise<T | null> {
    const key = this.hashKey(tenantId, instanceId);
    const result = await this.ctx.scripts.run(
      'delete-resource',
      [key, this.ctx.keys.counts(tenantId), this.ctx.keys.deletedResources(tenantId)],
      [name, this.kind.counter, this.deletedField(instanceId, name)],
    );
    return typeof result === 'string' ? this.parse(result, key, name) : null;
  }

  /** A record deleted whose brokers may not have taken its drop yet (null: none). */
  async deleted(tenantId: string, instanceId: string, name: string): Promise<T | null> {
    return readHashRecord(
      this.ctx,
      this.kind.schema,
      this.ctx.keys.deletedResources(tenantId),
      this.deletedField(instanceId, name),
    );
  }

  /** Claims the finishing of the name's deleted record for `ttlMs` (see DeletedClaim). */
  async claimDeleted(
    tenantId: string,
    instanceId: string,
    name: string,
    ttlMs: number,
  ): Promise<DeletedClaim<T>> {
    const field = this.deletedField(instanceId, name);
    const key = this.ctx.keys.deletedResources(tenantId);
    const token = randomBytes(12).toString('base64url');
    const result = await this.ctx.scripts.run(
      'claim-deleted',
      [this.hashKey(tenantId, instanceId), key, this.ctx.keys.deletedClaim(tenantId, field)],
      [name, field, token, ttlMs],
    );
    if (typeof result === 'string') {
      return {
        status: 'claimed',
        record: this.parse(result, key, field),
        claim: { token, json: result },
      };
    }
    return { status: result === -1 ? 'live' : result === -2 ? 'busy' : 'none' };
  }

  /**
   * Forgets a deleted record once its brokers took the drop (or it was left for them): with the
   * claim it was dropped under, only while no other call holds one (false: another does, and
   * forgets it after its own drop); without, whatever claims there are (the name exists again).
   */
  async forgetDeleted(
    tenantId: string,
    instanceId: string,
    name: string,
    claim?: DropClaim,
  ): Promise<boolean> {
    const field = this.deletedField(instanceId, name);
    const key = this.ctx.keys.deletedResources(tenantId);
    if (claim === undefined) {
      await this.ctx.redis.hdel(key, field);
      return true;
    }
    const result = await this.ctx.scripts.run(
      'forget-deleted',
      [key, this.ctx.keys.deletedClaim(tenantId, field)],
      [field, claim.token, claim.json],
    );
    return result === 1;
  }

  /** Gives a claim back without forgetting the record (its drop failed): the next DELETE or
   *  create of the name may claim it at once. */
  async releaseDeletedClaim(tenantId: string, instanceId: string, name: string, claim: DropClaim) {
    const field = this.deletedField(instanceId, name);
    await this.ctx.scripts.run(
      'lease-release',
      [this.ctx.keys.deletedClaim(tenantId, field)],
      [claim.token],
    );
  }

  /** Forgets the deleted records of every topic and group of an instance (it is deleted). */
  async forgetAllDeleted(tenantId: string, instanceId: string): Promise<void> {
    const key = this.ctx.keys.deletedResources(tenantId);
    const ofInstance = [namedDrop('topic', instanceId, ''), namedDrop('group', instanceId, '')];
    const fields = (await this.ctx.redis.hkeys(key)).filter((field) =>
      ofInstance.some((prefix) => field.startsWith(prefix)),
    );
    if (fields.length > 0) await this.ctx.redis.hdel(key, ...fields);
  }

  private deletedField(instanceId: string, name: string): string {
    return namedDrop(this.kind.counter === 'topics' ? 'topic' : 'group', instanceId, name);
  }

  protected abstract order(a: T, b: T): number;

  private parse(json: string, key: string, field: string): T {
    return decodeRecord(this.kind.schema, json, { key, field });
  }
}
