// Instances of a tenant (the namespace of topics and groups). Names are unique per tenant; an
// instance is created with its data key (the key its message bodies are sealed with).
// Deleting an instance removes its topics, groups and data key in the same script and returns the
// topics and groups, so the caller can tell the brokers to drop their data.
import type { DataKeyRepository } from './data-keys.js';
import { newInstanceId } from './ids.js';
import { GROUP, INSTANCE, TOPIC, decodeRecord, encodeRecord } from './records.js';
import { readHashRecord, readHashRecords, type RepoContext } from './repo-context.js';
import { scriptError } from './scripts.js';
import type { GroupRecord, Instance, TopicRecord } from './types.js';

export interface DeletedInstance {
  instance: Instance;
  topics: TopicRecord[];
  groups: GroupRecord[];
}

export class InstanceRepository {
  constructor(
    private readonly ctx: RepoContext,
    private readonly dataKeys: DataKeyRepository,
  ) {}

  async create(tenantId: string, name: string, now = Date.now()): Promise<Instance> {
    const { keys, scripts } = this.ctx;
    const instance: Instance = { instanceId: newInstanceId(), tenantId, name, createdAt: now };
    const result = await scripts.run(
      'create-instance',
      [
        keys.tenant(tenantId),
        keys.instances(tenantId),
        keys.instanceNames(tenantId),
        keys.dataKey(tenantId, instance.instanceId),
      ],
      [
        instance.instanceId,
        name,
        encodeRecord(instance),
        this.dataKeys.sealNew(tenantId, instance.instanceId),
      ],
    );
    if (result !== 1) throw scriptError(result as number, `instance ${name}`);
    return instance;
  }

  async get(tenantId: string, instanceId: string): Promise<Instance | null> {
    return readHashRecord(this.ctx, INSTANCE, this.ctx.keys.instances(tenantId), instanceId);
  }

  async list(tenantId: string): Promise<Instance[]> {
    const instances = await readHashRecords(this.ctx, INSTANCE, this.ctx.keys.instances(tenantId));
    return instances.sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
  }

  async delete(tenantId: string, instanceId: string): Promise<DeletedInstance | null> {
    const { keys, scripts } = this.ctx;
    const result = (await scripts.run(
      'delete-instance',
      [
        keys.instances(tenantId),
        keys.instanceNames(tenantId),
        keys.topics(tenantId, instanceId),
        keys.groups(tenantId, instanceId),
        keys.counts(tenantId),
        keys.alarms(tenantId, instanceId),
        keys.dataKey(tenantId, instanceId),
      ],
      [instanceId],
    )) as [string, string[], string[]] | null;
    if (result === null) return null;
    const topicsKey = { key: keys.topics(tenantId, instanceId) };
    const groupsKey = { key: keys.groups(tenantId, instanceId) };
    return {
      instance: decodeRecord(INSTANCE, result[0], {
        key: keys.instances(tenantId),
        field: instanceId,
      }),
      topics: result[1].map((json) => decodeRecord(TOPIC, json, topicsKey)),
      groups: result[2].map((json) => decodeRecord(GROUP, json, groupsKey)),
    };
  }
}
