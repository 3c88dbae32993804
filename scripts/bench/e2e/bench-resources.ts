// The /v1 topic and groups a Wharf driver's run works on, whatever protocol it then speaks: new
// names each run (so no run sees another's messages), the topic and throughput group made at
// set-up, the latency group made when the latency run starts (a group reads what is stored after
// its creation, so it starts after the throughput backlog), all deleted at teardown.
import { uniqueName } from '../lib/peer-driver.js';
import type { SignedClient } from './signed-client.js';

export class BenchResources {
  readonly topic: string;
  readonly groups: { readonly throughput: string; readonly latency: string };

  /** `prefix` tells one driver's names from another's (`mq` gives `mqbench-…`). */
  constructor(
    private readonly admin: SignedClient,
    private readonly base: string,
    prefix = '',
  ) {
    this.topic = uniqueName(`${prefix}bench`);
    this.groups = {
      throughput: uniqueName(`${prefix}throughput`),
      latency: uniqueName(`${prefix}latency`),
    };
  }

  async create(): Promise<void> {
    await this.admin.ok('PUT', `${this.base}/topics/${this.topic}`, {
      messageType: 'NORMAL',
      queueCount: 8,
    });
    await this.createGroup(this.groups.throughput);
  }

  createLatencyGroup(): Promise<void> {
    return this.createGroup(this.groups.latency);
  }

  async delete(): Promise<void> {
    await this.admin.request('DELETE', `${this.base}/topics/${this.topic}`);
    for (const group of Object.values(this.groups)) {
      await this.admin.request('DELETE', `${this.base}/groups/${group}`);
    }
  }

  private async createGroup(group: string): Promise<void> {
    await this.admin.ok('PUT', `${this.base}/groups/${group}`, { invisibleSeconds: 60 });
  }
}
