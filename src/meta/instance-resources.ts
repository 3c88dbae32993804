// The shared shape of topics and groups: records in a hash per instance, an idempotent PUT that
// checks the tenant's count quota atomically (put-resource-4.lua), and deletes that give the
// count back. Each record stores `spec`, the canonical JSON of its settable fields, so the
// script can tell "unchanged" from "updated" without re-encoding JSON in Lua; reading drops it.
import { namedDrop } from '../model/index.js';
import { decodeRecord, encodeRecord, type RecordSchema } from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';

export type PutStatus = 'created' | 'unchanged' | 'updated';

const PUT_STATUS: Record<number, PutStatus> = { 1: 'created', 0: 'unchanged', 2: 'updated' };

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
      ],
    );
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

  /** Forgets a deleted record once its brokers took the drop (or it was left for them). */
  async forgetDeleted(tenantId: string, instanceId: string, name: string): Promise<void> {
    await this.ctx.redis.hdel(
      this.ctx.keys.deletedResources(tenantId),
      this.deletedField(instanceId, name),
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
