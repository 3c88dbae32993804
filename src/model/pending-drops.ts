// Pending drops (cluster): a topic, group or instance deleted while a broker that holds (or may
// hold) its data was down. The gateway leaves the drop for that broker (meta/pending-drops.ts);
// the broker applies it to itself when it is back, before it serves, and when one is announced
// while it runs (broker/pending-drops.ts) — so a name created again never meets the deleted one's
// messages, cursors or internal topics there.
import type { GroupDescriptor, TopicDescriptor } from './descriptors.js';

/** What was deleted: the broker drops it as the gateway's call would have. */
export type DropTarget =
  | { kind: 'topic'; topic: TopicDescriptor }
  | { kind: 'group'; group: GroupDescriptor }
  | { kind: 'instance'; tenantId: string; instanceId: string };

export type PendingDrop = DropTarget & {
  /** Unique: the record's field, deleted once the broker applied it. */
  dropId: string;
  /** When the gateway left it (its clock; logs). */
  droppedAtMs: number;
};

/** Where a broker finds the drops left for it. */
export interface PendingDropSource {
  /** Up to `max` drops left for this broker, and the ids of records this version cannot read
   *  (written by a newer gateway, damaged): left where they are, reported, never applied. */
  pending(max: number): Promise<{ drops: PendingDrop[]; unreadable: string[] }>;
  /** These drops are applied: forget them. */
  done(drops: readonly PendingDrop[]): Promise<void>;
  /** Calls `onDrop` soon after a drop is left for this broker (and after a reconnect), until the
   *  returned stop is called. A push can be missed: the broker still looks every interval. */
  watch?(onDrop: () => void): () => void;
}

/** Where a gateway leaves a drop for a broker that is down. */
export interface PendingDropSink {
  add(brokerId: number, drop: PendingDrop): Promise<void>;
}

/** The tenant a drop belongs to. */
export function dropTenant(target: DropTarget): string {
  switch (target.kind) {
    case 'topic':
      return target.topic.tenantId;
    case 'group':
      return target.group.tenantId;
    case 'instance':
      return target.tenantId;
  }
}

/** The name a drop deletes within its tenant, as a pending-drop lookup names it: `topic
 *  <instance>/<topic>`, `group <instance>/<group>`, `instance <instance>`. */
export function droppedName(target: DropTarget): string {
  switch (target.kind) {
    case 'topic':
      return namedDrop('topic', target.topic.instanceId, target.topic.topic);
    case 'group':
      return namedDrop('group', target.group.instanceId, target.group.group);
    case 'instance':
      return `instance ${target.instanceId}`;
  }
}

/** The droppedName of a topic or group of an instance. */
export function namedDrop(kind: 'topic' | 'group', instanceId: string, name: string): string {
  return `${kind} ${instanceId}/${name}`;
}

/** A drop for the log: what it names with its tenant, never more (`topic <tenant>/<instance>/
 *  <topic>`, `group <tenant>/<instance>/<group>`, `instance <tenant>/<instance>`). */
export function describeDrop(target: DropTarget): string {
  const name = droppedName(target);
  const space = name.indexOf(' ');
  return `${name.slice(0, space)} ${dropTenant(target)}/${name.slice(space + 1)}`;
}
