// BrokerClient for the all-in-one node: the broker in the same process, behind the interface,
// with the deadlines a network client has. A call the broker has not answered by its deadline
// (its disk's flushes hang: a stalled volume gives no error, only waits) answers 503 Unavailable
// with retry-after, as a cluster gateway answers for a broker that does not answer, instead of
// holding the client until its own timeout. The call goes on in the broker: a publish may still
// be stored (a 503 is safe to retry with its dedupId), and what a receive takes after its
// deadline is given back unseen.
import { returnUnseen, type BrokerClient } from './broker-client.js';
import { unavailable } from './rpc-channel.js';

export interface InProcessClientOptions {
  /** Deadline of a call that does not wait. Default 10000 ms (the stall /readyz reports). */
  callTimeoutMs?: number;
  /** Added to a receive's `waitMs` for its deadline. Default 10000 ms. */
  longPollMarginMs?: number;
  /** The retry-after of a missed deadline. Default 1000 ms. */
  retryAfterMs?: number;
}

/** The in-process transport: the broker itself, each message-path call under a deadline. */
export function inProcessBrokerClient(
  broker: BrokerClient,
  options: InProcessClientOptions = {},
): BrokerClient {
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const marginMs = options.longPollMarginMs ?? 10_000;
  const retryAfterMs = options.retryAfterMs ?? 1000;

  /** `work`, or Unavailable once `ms` passed; `late` gets an answer that came after that. */
  function within<T>(
    op: string,
    work: Promise<T>,
    ms: number,
    onDeadline?: () => void,
    late?: (answer: T) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let missed = false;
      const timer = setTimeout(() => {
        missed = true;
        onDeadline?.();
        reject(
          unavailable(
            `broker call ${op} got no answer in ${ms} ms (a stalled data disk? see /readyz)`,
            retryAfterMs,
          ),
        );
      }, ms);
      work.then(
        (answer) => {
          clearTimeout(timer);
          if (missed) late?.(answer);
          else resolve(answer);
        },
        (error: Error) => {
          clearTimeout(timer);
          if (!missed) reject(error);
        },
      );
    });
  }
  const timed = <T>(op: string, work: Promise<T>): Promise<T> => within(op, work, callTimeoutMs);
  /** A long poll: its deadline is its wait plus the margin, and at the deadline the broker is
   *  told to stop waiting (the caller's own signal is left alone). */
  function parked<T>(
    op: string,
    waitMs: number,
    signal: AbortSignal | undefined,
    call: (signal: AbortSignal) => Promise<T>,
    late?: (answer: T) => void,
  ): Promise<T> {
    const deadline = new AbortController();
    const combined =
      signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]);
    return within(op, call(combined), waitMs + marginMs, () => deadline.abort(), late);
  }

  return {
    publish: (topic, messages) => timed('publish', broker.publish(topic, messages)),
    receive: (topic, group, request, signal) =>
      parked(
        'receive',
        request.waitMs,
        signal,
        (combined) => broker.receive(topic, group, request, combined),
        (taken) => void returnUnseen(broker, topic, group, taken),
      ),
    ack: (topic, group, handles) => timed('ack', broker.ack(topic, group, handles)),
    changeVisibility: (topic, group, handle, invisibleMs) =>
      timed('changeVisibility', broker.changeVisibility(topic, group, handle, invisibleMs)),
    returnMessages: (topic, group, handles) =>
      timed('returnMessages', broker.returnMessages(topic, group, handles)),
    getMessage: (topic, messageId) => timed('getMessage', broker.getMessage(topic, messageId)),
    cancelMessage: (topic, messageId) =>
      timed('cancelMessage', broker.cancelMessage(topic, messageId)),
    queryByKey: (topic, key, limit) => timed('queryByKey', broker.queryByKey(topic, key, limit)),
    queryByTime: (topic, query) => timed('queryByTime', broker.queryByTime(topic, query)),
    trace: (topic, messageId) => timed('trace', broker.trace(topic, messageId)),
    topicStats: (topic) => timed('topicStats', broker.topicStats(topic)),
    groupStats: (topic, group) => timed('groupStats', broker.groupStats(topic, group)),
    deadLetters: (group, limit, cursor) =>
      timed('deadLetters', broker.deadLetters(group, limit, cursor)),
    health: () => timed('health', broker.health()),
    commitTransaction: (topic, transactionId, options) =>
      timed('commitTransaction', broker.commitTransaction(topic, transactionId, options)),
    rollbackTransaction: (topic, transactionId, options) =>
      timed('rollbackTransaction', broker.rollbackTransaction(topic, transactionId, options)),
    // an offer answered after the deadline is an unanswered one: offered again later
    checkTransactions: (topic, request, signal) =>
      parked('checkTransactions', request.waitMs, signal, (combined) =>
        broker.checkTransactions(topic, request, combined),
      ),
    // operator calls that may run long on a large topic (a drop, a re-send, a reset) and close
    // wait for the broker: their work is not a message a client is holding for
    resetGroup: (topic, group, to) => broker.resetGroup(topic, group, to),
    resendDeadLetters: (group, messageIds) => broker.resendDeadLetters(group, messageIds),
    dropTopic: (topic) => broker.dropTopic(topic),
    dropGroup: (group) => broker.dropGroup(group),
    dropInstance: (tenantId, instanceId) => broker.dropInstance(tenantId, instanceId),
    close: () => broker.close(),
  };
}
