// A group's dead letters: moving a message that used its delivery attempts into the group's
// dead-letter queue (copy first, then mark it done for the subscription; a copy left by a crash
// between the two is found by key and not made twice), listing the dead-letter queue (skipping
// those already re-sent) and re-sending chosen ones, which copies each into the group's re-send
// queue for its topic (read by the group's receives beside the topic's queues) and marks it done
// in the dead-letter queue. A re-send is journaled (dlqResend) before its copies are made, each
// copy keyed by its dead letter's log position (names.resentKey): a crash between the copies and
// their dlqDone is finished at start (recover), the copies made already found by key, not made
// twice — a re-send sent again after the crash finds them done.
import type { DeadLetter, GroupDescriptor, TopicDescriptor } from '../model/index.js';
import { WharfError } from '../errors.js';
import { MessageFlags, type StoredMessage } from '../store/index.js';
import type { BrokerCore } from './broker-core.js';
import type { Subscription } from './consumer-ledger.js';
import { copyProperties, deadLetteredBy, origin, userFields } from './message-view.js';
import {
  deadLetterKey,
  deadLetterTopic,
  groupKey,
  isResentKey,
  messageScope,
  resendTopic,
  resentKey,
  storeTopic,
  subscriptionQueue,
  SystemProperty,
} from './names.js';

export interface ResendResult {
  messageId: string;
  ok: boolean;
  code?: string;
}

const CURSOR_PATTERN = /^[0-9]{1,15}$/;

function toDeadLetter(message: StoredMessage, body: Buffer): DeadLetter {
  return {
    messageId: message.properties[SystemProperty.messageId] ?? '',
    topic: message.properties[SystemProperty.originTopic] ?? '',
    ...userFields(message, body),
    publishTime: origin(message).publishTime,
    deadLetteredAt: message.storeTimestampMs,
    deliveryAttempt: message.attempt,
  };
}

export class DeadLetters {
  /** Dead letters being re-sent now ("group\0queueOffset"): a second resend of one waits out. */
  private readonly resending = new Set<string>();
  /** The last move of each message being moved now (group, store queue and offset). */
  private readonly moving = new Map<string, Promise<void>>();

  constructor(private readonly core: BrokerCore) {}

  async list(
    group: GroupDescriptor,
    limit: number,
    cursor?: string,
  ): Promise<{ messages: DeadLetter[]; nextCursor?: string }> {
    if (cursor !== undefined && !CURSOR_PATTERN.test(cursor))
      throw new WharfError('InvalidArgument', 'invalid cursor');
    const topic = deadLetterTopic(group);
    const done = this.core.ledger.deadLetterDone(groupKey(group));
    const { minQueueOffset, maxQueueOffset } = this.core.store.queueOffsets(topic, 0);
    let from = Math.max(minQueueOffset, cursor === undefined ? 0 : Number(cursor));
    const messages: DeadLetter[] = [];
    await this.core.bodyKeys.ready(group.tenantId, group.instanceId);
    while (messages.length < limit && from < maxQueueOffset) {
      const result = await this.core.store.readQueue(topic, 0, from, {
        maxMessages: Math.min(256, limit * 2),
      });
      for (const message of result.messages) {
        if (messages.length >= limit) break;
        from = message.queueOffset + 1;
        if (done.has(message.queueOffset)) continue;
        const body = this.core.bodyKeys.open(message);
        if (body !== null) messages.push(toDeadLetter(message, body)); // null: its key is gone
      }
      if (result.messages.length === 0) from = result.nextQueueOffset;
      if (result.nextQueueOffset <= from && result.messages.length === 0) break;
    }
    return from < maxQueueOffset ? { messages, nextCursor: String(from) } : { messages };
  }

  /** Count of dead letters not re-sent (group statistics, alarms). */
  count(group: GroupDescriptor): number {
    const { minQueueOffset, maxQueueOffset } = this.core.store.queueOffsets(
      deadLetterTopic(group),
      0,
    );
    const done = this.core.ledger.deadLetterDone(groupKey(group));
    let resent = 0;
    for (const [start, end] of done.pairs())
      resent += Math.max(0, Math.min(end, maxQueueOffset) - Math.max(start, minQueueOffset));
    return Math.max(0, maxQueueOffset - minQueueOffset - resent);
  }

  /** Copies the message to the group's dead-letter queue, then marks it done. Runs in the
   *  background; the offset is held meanwhile so it is neither redelivered nor acked. */
  move(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    sub: Subscription,
    queueId: number,
    offset: number,
  ): void {
    const cursor = sub.cursors.get(queueId);
    if (cursor === undefined || cursor.isHeld(offset)) return;
    const entry = cursor.inflight.get(offset);
    if (entry === undefined) return;
    cursor.hold(offset);
    const [name, storeQueue] = subscriptionQueue(topic, group, queueId);
    // moves of one message in one group run one after another: a BROADCASTING group's consumers
    // whose deliveries of it end together would each find no dead letter of it and make one
    const key = `${groupKey(group)}\u0000${name}\u0000${storeQueue}\u0000${offset}`;
    const before = this.moving.get(key);
    const task = (async () => {
      await before?.catch(() => undefined);
      const result = await this.core.store.readQueue(name, storeQueue, offset, { maxMessages: 1 });
      const message = result.messages[0];
      const messageId =
        message === undefined
          ? ''
          : (message.properties[SystemProperty.messageId] ??
            this.core.ids.encodeOne(messageScope(topic), {
              brokerId: this.core.brokerId,
              logOffset: message.logOffset,
            }));
      // a copy left by a move that crashed before its ledger entry: not copied twice
      const [earlier] =
        message === undefined
          ? []
          : await this.core.store.queryByKey(deadLetterTopic(group), deadLetterKey(messageId), 1);
      const waiting =
        earlier !== undefined &&
        !this.core.ledger.deadLetterDone(groupKey(group)).has(earlier.queueOffset)
          ? earlier
          : undefined;
      // BROADCASTING: a group's one dead letter of a message names the consumers whose deliveries
      // it ended (query by id tells them from those that acked it); another consumer's dead
      // letter of it waiting is replaced by one naming this consumer too
      const by = sub.consumerSlot === 0 ? null : deadLetteredBy(waiting);
      const alreadyMoved = waiting !== undefined && (by === null || by.includes(sub.consumerSlot));
      // the topic or group dropped while this move read: no dead letter of it is made after
      // its drop (which marked those of the topic done: forgetTopic)
      if (!this.core.ledger.isLive(sub)) return;
      // a copy a fence withdrew (its failed-over twin is the message) is done, not a dead letter
      const withdrawn = this.core.journal.withdrawals.of(name, storeQueue)?.has(offset) === true;
      if (message !== undefined && message.queueOffset === offset && !alreadyMoved && !withdrawn) {
        const properties = copyProperties(message, messageId, topic.topic);
        if (by !== null)
          properties[SystemProperty.deadLetteredBy] = [...by, sub.consumerSlot].join(',');
        await this.core.store.append([
          {
            topic: deadLetterTopic(group),
            queueId: 0,
            ...(message.tag !== '' ? { tag: message.tag } : {}),
            keys: [
              ...message.keys.filter((key) => key !== deadLetterKey(messageId)),
              deadLetterKey(messageId),
            ],
            properties,
            body: message.body, // a sealed envelope stays sealed (same instance, same key)
            bornTimestampMs: message.bornTimestampMs,
            flags: MessageFlags.RETRY | (message.flags & MessageFlags.SEALED),
            attempt: entry.attempt,
          },
        ]);
        // the one it replaces is no longer listed, counted or re-sent (a crash before this
        // leaves both listed: the message's dead letter twice, never none)
        if (waiting !== undefined) {
          await this.core.record([
            { op: 'dlqDone', group: groupKey(group), offsets: [waiting.queueOffset] },
          ]);
        }
        this.core.logger.info(
          { topic: topic.topic, group: group.group, messageId, attempts: entry.attempt },
          'message moved to the dead-letter queue',
        );
        const consumerId =
          sub.consumerSlot === 0
            ? undefined
            : this.core.ledger.consumerIdOfSlot(sub.groupKey, sub.consumerSlot);
        this.core.traceLog?.deadLettered(topic, group.group, message, entry.attempt, consumerId);
      }
      // a reset, clamp or drop meanwhile let go of the offset: the move no longer completes it
      // (a completion past the cursor's read position would count it delivered, see complete())
      if (!this.core.ledger.isLive(sub) || sub.cursors.get(queueId) !== cursor) return;
      if (!cursor.inflight.has(offset) || !cursor.isHeld(offset)) return;
      // looked at before the completion applies: moves completing together would each find
      // the room the others made, and none would wake the receives
      const atCap = cursor.inflightCount >= this.core.limits.maxInflightPerQueue;
      await this.core.record([{ op: 'complete', sub: sub.key, queue: queueId, offsets: [offset] }]);
      // FIFO: the queue's next message may go; a queue at its in-flight cap has room again
      if (topic.messageType === 'FIFO' || atCap) this.core.longPoll.notify(storeTopic(topic));
    })().catch((error: unknown) => {
      // try again later: the offset comes due again in a few seconds
      const retryAt = Date.now() + 5000;
      cursor.changeVisibility(offset, entry.nextVisibleMs, retryAt);
      throw error;
    });
    this.moving.set(key, task);
    const forget = (): void => {
      if (this.moving.get(key) === task) this.moving.delete(key);
    };
    task.then(forget, forget);
    this.core.track(task, 'dead-letter move');
  }

  /** Marks done, in the group's dead-letter queue, the dead letters of topic `topic` (a user
   *  topic's name), which was deleted: they are no longer listed, counted or re-sent, and none
   *  goes to a topic created again under the name. Reads the whole queue (topic deletes are
   *  rare; dead-letter queues are bounded by retention); safe to run again. */
  async forgetTopic(
    group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
    topic: string,
  ): Promise<void> {
    const dlq = deadLetterTopic(group);
    const key = groupKey(group);
    const done = this.core.ledger.deadLetterDone(key);
    const { minQueueOffset, maxQueueOffset } = this.core.store.queueOffsets(dlq, 0);
    const offsets: number[] = [];
    let from = minQueueOffset;
    while (from < maxQueueOffset) {
      const result = await this.core.store.readQueue(dlq, 0, from, {
        maxMessages: 256,
        maxBytes: 4 * 1024 * 1024, // bodies of up to 4 MiB: a bounded read
      });
      for (const message of result.messages) {
        if (done.has(message.queueOffset)) continue;
        if (message.properties[SystemProperty.originTopic] === topic)
          offsets.push(message.queueOffset);
      }
      if (result.nextQueueOffset <= from) break;
      from = result.nextQueueOffset;
    }
    for (let i = 0; i < offsets.length; i += 1024)
      await this.core.record([{ op: 'dlqDone', group: key, offsets: offsets.slice(i, i + 1024) }]);
  }

  async resend(group: GroupDescriptor, messageIds: readonly string[]): Promise<ResendResult[]> {
    const topic = deadLetterTopic(group);
    const done = this.core.ledger.deadLetterDone(groupKey(group));
    const results: ResendResult[] = [];
    const found: { messageId: string; message: StoredMessage }[] = [];
    const key = groupKey(group);
    // one result per id asked, in order (a gateway merges brokers' answers by position); an id
    // repeated is re-sent once, its repeats answer as a dead letter re-sent already
    const asked = new Set<string>();
    for (const messageId of messageIds) {
      const repeated = asked.has(messageId);
      asked.add(messageId);
      const [message] = repeated
        ? []
        : await this.core.store.queryByKey(topic, deadLetterKey(messageId), 1);
      const claim = `${key}\u0000${message?.queueOffset ?? -1}`;
      if (message === undefined || done.has(message.queueOffset) || this.resending.has(claim)) {
        results.push({ messageId, ok: false, code: 'MessageNotFound' });
        continue;
      }
      this.resending.add(claim);
      found.push({ messageId, message });
      results.push({ messageId, ok: true });
    }
    if (found.length === 0) return results;
    try {
      await this.copyBack(
        group,
        found.map(({ message }) => message),
      );
    } finally {
      for (const { message } of found) this.resending.delete(`${key}\u0000${message.queueOffset}`);
    }
    return results;
  }

  /** Finishes the re-sends a crash cut between their journal entry and their dlqDone: copies
   *  the dead letters not copied yet, then marks them all done. At start, after the journal's
   *  recovery, and again from the sweep should that fail. */
  async recover(): Promise<void> {
    let finished = 0;
    for (const key of this.core.ledger.groupsResendingDeadLetters()) {
      const [tenantId = '', instanceId = '', name = ''] = key.split('/');
      const group = { tenantId, instanceId, group: name };
      const done = this.core.ledger.deadLetterDone(key);
      const found: StoredMessage[] = [];
      const gone: number[] = [];
      // claimed as a user's re-send claims them: run again by the sweep while the broker serves,
      // this and a user's re-send of the same dead letter must not both copy it
      const claims: string[] = [];
      try {
        for (const queueOffset of [...this.core.ledger.deadLettersBeingResent(key)]) {
          const claim = `${key}\u0000${queueOffset}`;
          if (done.has(queueOffset) || this.resending.has(claim)) continue;
          this.resending.add(claim);
          claims.push(claim);
          const result = await this.core.store.readQueue(deadLetterTopic(group), 0, queueOffset, {
            maxMessages: 1,
          });
          const message = result.messages[0];
          if (message?.queueOffset === queueOffset) found.push(message);
          else gone.push(queueOffset); // deleted by retention: nothing left to copy
        }
        if (gone.length > 0) await this.core.record([{ op: 'dlqDone', group: key, offsets: gone }]);
        if (found.length > 0) await this.copyBack(group, found);
      } finally {
        for (const claim of claims) this.resending.delete(claim);
      }
      finished += found.length;
    }
    if (finished > 0)
      this.core.logger.info({ deadLetters: finished }, 'dead-letter re-sends cut short finished');
  }

  /** Copies dead letters to their re-send queues and marks them done (see the file comment). */
  private async copyBack(
    group: Pick<GroupDescriptor, 'tenantId' | 'instanceId' | 'group'>,
    found: readonly StoredMessage[],
  ): Promise<void> {
    const key = groupKey(group);
    const offsets = found.map((message) => message.queueOffset);
    const resending = this.core.ledger.deadLettersBeingResent(key);
    // journaled before: a re-send cut short (a crash, a failed write) may have made these copies
    const interrupted = found.filter((message) => resending.has(message.queueOffset));
    if (interrupted.length < found.length)
      await this.core.record([{ op: 'dlqResend', group: key, offsets }]);
    const copied = new Set<number>();
    for (const message of interrupted) {
      const topic = resendTopic(group, message.properties[SystemProperty.originTopic] ?? '');
      const [copy] = await this.core.store.queryByKey(topic, resentKey(message.logOffset), 1);
      if (copy !== undefined) copied.add(message.logOffset);
    }
    const copies = found.filter((message) => !copied.has(message.logOffset));
    if (copies.length > 0) {
      await this.core.store.append(
        copies.map((message) => ({
          topic: resendTopic(group, message.properties[SystemProperty.originTopic] ?? ''),
          queueId: 0,
          ...(message.tag !== '' ? { tag: message.tag } : {}),
          keys: [...message.keys.filter((k) => !isResentKey(k)), resentKey(message.logOffset)],
          properties: message.properties,
          body: message.body, // a sealed envelope stays sealed (same instance, same key)
          bornTimestampMs: message.bornTimestampMs,
          flags: MessageFlags.RETRY | (message.flags & MessageFlags.SEALED),
          attempt: 0,
        })),
      );
    }
    await this.core.record([{ op: 'dlqDone', group: key, offsets }]);
    this.core.traceLog?.resent(group, copies);
    for (const message of copies) {
      const userTopic = message.properties[SystemProperty.originTopic] ?? '';
      this.core.longPoll.notify(
        storeTopic({ tenantId: group.tenantId, instanceId: group.instanceId, topic: userTopic }),
      );
    }
  }
}
