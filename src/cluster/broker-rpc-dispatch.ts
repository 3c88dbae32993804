// The server half of broker RPC, without a socket: a request frame in, the answer frame out,
// by calling the wrapped BrokerClient (the real Broker in practice). Errors answer as error
// frames (a WharfError with its code; anything else as Internal). The signal is the call's: a
// cancel frame or a closed connection aborts it, which frees a parked receive; a receive that
// popped messages as it was aborted makes them visible again instead of answering them.
import { WharfError } from '../errors.js';
import {
  decodeBrokerRpcRequest,
  encodeBrokerRpcError,
  encodeBrokerRpcResponse,
  type BrokerRpcOperation,
  type BrokerRpcRequest,
  type BrokerRpcResponse,
  type Frame,
} from '../protocol/index.js';
import { returnUnseen, type BrokerClient } from './broker-client.js';

type Handlers = {
  [K in BrokerRpcOperation]: (
    broker: BrokerClient,
    request: BrokerRpcRequest<K>,
    signal: AbortSignal,
  ) => Promise<BrokerRpcResponse<K>>;
};

const HANDLERS: Handlers = {
  publish: (b, r) => b.publish(r.topic, r.messages),
  receive: async (b, r, signal) => {
    const messages = await b.receive(r.topic, r.group, r.request, signal);
    if (!signal.aborted || messages.length === 0) return messages;
    // popped as the caller gave up (a cluster gateway took another broker's answer): nobody
    // will see this answer, so the messages are given back at once, not hidden until their
    // invisibility ends, and the delivery does not count
    await returnUnseen(b, r.topic, r.group, messages);
    return [];
  },
  ack: async (b, r) => {
    const wire: BrokerRpcResponse<'ack'> = [];
    for (const result of await b.ack(r.topic, r.group, r.receiptHandles)) {
      if (result.ok) wire.push(result);
      // only a cluster gateway answers Unavailable for a handle (its broker is down)
      else if (result.code === 'Unavailable')
        throw new WharfError('Internal', 'a broker answered Unavailable for a handle');
      else wire.push({ receiptHandle: result.receiptHandle, ok: false, code: result.code });
    }
    return wire;
  },
  changeVisibility: (b, r) => b.changeVisibility(r.topic, r.group, r.receiptHandle, r.invisibleMs),
  returnMessages: (b, r) => b.returnMessages(r.topic, r.group, r.receiptHandles),
  getMessage: (b, r) => b.getMessage(r.topic, r.messageId),
  queryByKey: (b, r) => b.queryByKey(r.topic, r.key, r.limit),
  queryByTime: (b, r) => b.queryByTime(r.topic, r.query),
  trace: (b, r) => b.trace(r.topic, r.messageId),
  resetGroup: (b, r) => b.resetGroup(r.topic, r.group, r.to),
  deadLetters: (b, r) => b.deadLetters(r.group, r.limit, r.cursor),
  resendDeadLetters: (b, r) => b.resendDeadLetters(r.group, r.messageIds),
  topicStats: (b, r) => b.topicStats(r.topic),
  groupStats: (b, r) => b.groupStats(r.topic, r.group),
  dropTopic: (b, r) => b.dropTopic(r.topic),
  dropGroup: (b, r) => b.dropGroup(r.group),
  dropInstance: (b, r) => b.dropInstance(r.tenantId, r.instanceId),
  health: (b) => b.health(),
  commitTransaction: (b, { topic, transactionId, ...options }) =>
    b.commitTransaction(topic, transactionId, options),
  rollbackTransaction: (b, { topic, transactionId, ...options }) =>
    b.rollbackTransaction(topic, transactionId, options),
  checkTransactions: (b, r, signal) => b.checkTransactions(r.topic, r.request, signal),
  cancelMessage: (b, r) => b.cancelMessage(r.topic, r.messageId),
};

/** The answer frame to one request frame; never rejects. */
export async function dispatchBrokerRpc(
  broker: BrokerClient,
  frame: Frame,
  signal: AbortSignal,
): Promise<Buffer> {
  const decoded = decodeBrokerRpcRequest(frame);
  if (decoded.status !== 'ok') {
    const code = decoded.status === 'unsupported' ? 'UnsupportedFormat' : 'InvalidArgument';
    return encodeBrokerRpcError(frame.op, frame.requestId, new WharfError(code, decoded.reason));
  }
  try {
    // name and request come from one table entry (DecodedBrokerRpcRequest): the pair is sound
    const handler = HANDLERS[decoded.name] as (
      broker: BrokerClient,
      request: unknown,
      signal: AbortSignal,
    ) => Promise<unknown>;
    const response = await handler(broker, decoded.request, signal);
    return encodeBrokerRpcResponse(decoded.name, frame.requestId, response as never);
  } catch (error) {
    return encodeBrokerRpcError(frame.op, frame.requestId, error);
  }
}
