// Drops a broker did not carry out: a topic, group or instance deleted while the broker was down,
// or whose drop it failed (a full disk refusing its journal or the store's deletion record). The
// metadata is gone by then and the client's DELETE cannot be undone, so the drop is left in Redis
// for that broker (RedisPendingDropSink), which applies it as soon as it can and before it serves
// after a restart (src/broker/pending-drops.ts); until then the name is not created again
// (MetaStore.refuseWhileDropping): a name created again never meets the deleted one's messages,
// delayed messages, cursors or dead letters. The routing client leaves drops for the brokers of a
// cluster; `leavingFailedDrops` does it for the all-in-one node's one broker.
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../errors.js';
import { describeDrop, type DropTarget, type PendingDropSink } from '../model/index.js';
import type { BrokerClient } from './broker-client.js';

export interface DropLogger {
  warn(obj: object, msg?: string): void;
}

/** Leaves `target`'s drop for `brokerId`; without a sink only says that the data stays. Throws
 *  when the drop cannot be left (Redis away). */
export async function leaveDrop(
  drops: PendingDropSink | undefined,
  logger: DropLogger | undefined,
  brokerId: number,
  target: DropTarget,
  why: string,
): Promise<void> {
  const what = describeDrop(target);
  if (drops === undefined) {
    logger?.warn({ brokerId, drop: what, why }, 'drop not sent: the broker keeps the data');
    return;
  }
  const dropId = randomBytes(12).toString('base64url');
  await drops.add(brokerId, { ...target, dropId, droppedAtMs: Date.now() });
  logger?.warn(
    { brokerId, drop: what, why },
    'broker did not take the drop: left for it to apply when it can',
  );
}

/** `client` (the all-in-one node's in-process one, an object of functions), whose drops the one
 *  broker `brokerId` fails are left for it in `drops` instead of failing. */
export function leavingFailedDrops(
  client: BrokerClient,
  brokerId: number,
  drops: PendingDropSink,
  logger: DropLogger,
): BrokerClient {
  const run = async (target: DropTarget, call: () => Promise<void>): Promise<void> => {
    try {
      await call();
    } catch (error) {
      await leaveDrop(drops, logger, brokerId, target, errorMessage(error));
    }
  };
  return {
    ...client,
    dropTopic: (topic) => run({ kind: 'topic', topic }, () => client.dropTopic(topic)),
    dropGroup: (group) => run({ kind: 'group', group }, () => client.dropGroup(group)),
    dropInstance: (tenantId, instanceId) =>
      run({ kind: 'instance', tenantId, instanceId }, () =>
        client.dropInstance(tenantId, instanceId),
      ),
  };
}
