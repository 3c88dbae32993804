// The shared shape of topics and groups: records in a hash per instance, an idempotent PUT that
// checks the tenant's count quota atomically (put-resource-4.lua), and deletes that give the
// count back. Each record stores `spec`, the canonical JSON of its settable fields, so the
// script can tell "unchanged" from "updated" without re-encoding JSON in Lua.
import { parseJson, type RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';
import { stripSpec } from './instances.js';

export type PutStatus = 'created' | 'unchanged' | 'updated';

const PUT_STATUS: Record<number, PutStatus> = { 1: 'created', 0: 'unchanged', 2: 'updated' };

export interface ResourceKind {
  /** `topics` or `groups`: the counter field and the noun in messages. */
  counter: 'topics' | 'groups';
  quota: 'maxTopics' | 'maxGroups';
  immutableField: string;
  immutableCode: number;
  growOnlyField: string;
  noun: string;
}

export abstract class InstanceResourceRepository<T extends { createdAt: number }> {
  constructor(
    protected readonly ctx: RepoContext,
    private readonly kind: ResourceKind,
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
        JSON.stringify({ ...record, spec }),
        this.kind.counter,
        this.kind.quota,
        this.kind.immutableField,
        this.kind.immutableCode,
        spec,
        this.kind.growOnlyField,
      ],
    );
    if (typeof result === 'number') throw scriptError(result, `${this.kind.noun} ${name}`);
    const [status, json] = result as [number, string];
    return { status: PUT_STATUS[status], record: this.parse(json) };
  }

  async get(tenantId: string, instanceId: string, name: string): Promise<T | null> {
    const json = await this.ctx.redis.hget(this.hashKey(tenantId, instanceId), name);
    return json === null ? null : this.parse(json);
  }

  async list(tenantId: string, instanceId: string): Promise<T[]> {
    const jsons = await this.ctx.redis.hvals(this.hashKey(tenantId, instanceId));
    return jsons.map((j) => this.parse(j)).sort((a, b) => this.order(a, b));
  }

  async delete(tenantId: string, instanceId: string, name: string): Promise<T | null> {
    const result = await this.ctx.scripts.run(
      'delete-resource',
      [this.hashKey(tenantId, instanceId), this.ctx.keys.counts(tenantId)],
      [name, this.kind.counter],
    );
    return typeof result === 'string' ? this.parse(result) : null;
  }

  protected abstract order(a: T, b: T): number;

  private parse(json: string): T {
    return stripSpec(parseJson<T & { spec?: string }>(json)) as T;
  }
}
