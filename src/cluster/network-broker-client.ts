// BrokerClient over the network: each call is encoded with the broker RPC codec, sent through an
// RpcChannel and its answer decoded; an error frame is thrown again as the same WharfError. Every
// call has a deadline (a long poll: its wait plus a margin); a missed deadline or an unreachable
// broker is `Unavailable` with retry-after, never a hang. A caller's abort of a receive is
// carried to the broker (the parked receive is freed) and answers [] as in-process; messages
// popped as the abort crossed the wire are made visible again, never hidden.
//
// Transport: length-prefixed frames over one TCP connection (`tcpBrokerClient`), chosen over
// HTTP/2 (`http2BrokerClient`, kept for comparison) by `npm run bench:cluster` (3 interleaved
// rounds, 2 shared cores under load, 16 publishes of 32 × 1 KiB in flight): per message the TCP
// client spent 6.6–11 µs of CPU against HTTP/2's 18–20 (publish) and 11–19 against 23–25
// (receive+ack), the broker 22–36 against 37–39 (publish); TCP moved 1.8–2.2× HTTP/2's messages
// in the two quieter rounds. node:http2 pays per stream (headers, stream objects, flow-control
// bookkeeping) what the frames pay once per connection; TCP gets back-pressure from the bounded
// in-flight window and cancellation from cancel frames, the two things HTTP/2 offered.
// The thread transport (`PortRpcChannel`, frames over a MessagePort to a broker on another thread
// of the process) measured about as costly as TCP in the same bench (0.51–0.57× in-process
// publish against TCP's 0.49–0.51×, receive+ack 0.49× against 0.49–0.52×): the socket's syscalls
// go, the frames' encode, copies and decode and a second heap stay.
// It is kept for measuring, as HTTP/2 is; no process runs it.
import { setTimeout as sleep } from 'node:timers/promises';
import { WharfError } from '../errors.js';
import type {
  CheckedMessage,
  DeadLetter,
  GroupDescriptor,
  MessageView,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
  TraceEvent,
  TransactionCheckRequest,
  TransactionDecisionOptions,
} from '../model/index.js';
import {
  FrameKind,
  decodeBrokerRpcError,
  decodeBrokerRpcResponse,
  encodeBrokerRpcRequest,
  type BrokerRpcOperation,
  type BrokerRpcRequest,
  type BrokerRpcResponse,
  type Frame,
} from '../protocol/index.js';
import { returnUnseen } from './broker-client.js';
import type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  GroupStats,
  MessagePage,
  ResetTarget,
  TimeQuery,
  TopicStats,
  VisibilityResult,
} from './broker-client.js';
import { Http2RpcChannel, type Http2ChannelOptions } from './http2-rpc-channel.js';
import { unavailable, type RpcChannel } from './rpc-channel.js';
import { TcpRpcChannel, type TcpChannelOptions } from './tcp-rpc-channel.js';

/** How long a cancelled check waits for the broker's late answer (its offers made meanwhile). */
const LATE_CHECK_WAIT_MS = 1000;

export interface NetworkClientOptions {
  /** Deadline of a call that does not wait. Default 5000 ms. */
  callTimeoutMs?: number;
  /** Added to a receive's `waitMs` for its deadline. Default 2000 ms. */
  longPollMarginMs?: number;
  /** The retry-after of a missed deadline. Default 1000 ms. */
  retryAfterMs?: number;
}

export class NetworkBrokerClient implements BrokerClient {
  private nextRequestId = 0;
  private readonly callTimeoutMs: number;
  private readonly longPollMarginMs: number;
  private readonly retryAfterMs: number;

  constructor(
    private readonly channel: RpcChannel,
    options: NetworkClientOptions = {},
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.longPollMarginMs = options.longPollMarginMs ?? 2000;
    this.retryAfterMs = options.retryAfterMs ?? 1000;
  }

  private async call<K extends BrokerRpcOperation>(
    op: K,
    request: BrokerRpcRequest<K>,
    timeoutMs = this.callTimeoutMs,
    callerSignal?: AbortSignal,
    onLateAnswer?: (frame: Frame) => void,
  ): Promise<BrokerRpcResponse<K>> {
    this.nextRequestId = (this.nextRequestId + 1) >>> 0;
    const requestId = this.nextRequestId;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new WharfError('InvalidArgument', `broker call ${op}: deadline ${timeoutMs} ms`);
    }
    // AbortSignal.timeout takes whole ms below 2^31 (a 30 s long poll is far inside)
    const deadline = AbortSignal.timeout(Math.min(Math.ceil(timeoutMs), 2 ** 31 - 1));
    const signal =
      callerSignal === undefined ? deadline : AbortSignal.any([callerSignal, deadline]);
    const bytes = encodeBrokerRpcRequest(op, requestId, request);
    let frame;
    try {
      frame = await this.channel.call(requestId, op, bytes, signal, onLateAnswer);
    } catch (error) {
      if (callerSignal?.aborted !== true && deadline.aborted) {
        throw unavailable(
          `broker call ${op} missed its ${timeoutMs} ms deadline`,
          this.retryAfterMs,
        );
      }
      throw error;
    }
    if (frame.kind === FrameKind.error) {
      const decoded = decodeBrokerRpcError(frame);
      if (decoded.status === 'ok') throw decoded.error;
      throw new WharfError('Internal', `corrupt error answer to ${op}: ${decoded.reason}`);
    }
    const decoded = decodeBrokerRpcResponse(op, frame);
    if (decoded.status === 'ok') return decoded.response;
    throw new WharfError('Internal', `corrupt answer to ${op}: ${decoded.reason}`);
  }

  publish(topic: TopicDescriptor, messages: PublishMessage[]): Promise<PublishResult[]> {
    return this.call('publish', { topic, messages });
  }

  async receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    // an answer the broker sent before it saw our cancel holds popped messages nobody will
    // see: they are made visible again at once (the broker does the same for a pop it sees
    // aborted), so an aborted receive never hides messages until their invisibility ends
    const onLateAnswer = (frame: Frame): void => {
      if (frame.kind !== FrameKind.response) return;
      const late = decodeBrokerRpcResponse('receive', frame);
      if (late.status !== 'ok' || late.response.length === 0) return;
      void returnUnseen(this, topic, group, late.response);
    };
    try {
      return await this.call(
        'receive',
        { topic, group, request },
        request.waitMs + this.longPollMarginMs,
        signal,
        onLateAnswer,
      );
    } catch (error) {
      // the broker was told to drop the call; an aborted receive answers nothing, as in-process
      if (signal?.aborted === true) return [];
      throw error;
    }
  }

  ack(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<AckResult[]> {
    return this.call('ack', { topic, group, receiptHandles });
  }

  returnMessages(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<void> {
    return this.call('returnMessages', { topic, group, receiptHandles });
  }

  changeVisibility(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandle: string,
    invisibleMs: number,
  ): Promise<VisibilityResult> {
    return this.call('changeVisibility', { topic, group, receiptHandle, invisibleMs });
  }

  getMessage(topic: TopicDescriptor, messageId: string): Promise<MessageView> {
    return this.call('getMessage', { topic, messageId });
  }

  cancelMessage(topic: TopicDescriptor, messageId: string): Promise<void> {
    return this.call('cancelMessage', { topic, messageId });
  }

  queryByKey(topic: TopicDescriptor, key: string, limit: number): Promise<MessageView[]> {
    return this.call('queryByKey', { topic, key, limit });
  }

  queryByTime(topic: TopicDescriptor, query: TimeQuery): Promise<MessagePage> {
    return this.call('queryByTime', { topic, query });
  }

  trace(topic: TopicDescriptor, messageId: string): Promise<TraceEvent[]> {
    return this.call('trace', { topic, messageId });
  }

  resetGroup(topic: TopicDescriptor, group: GroupDescriptor, to: ResetTarget): Promise<void> {
    return this.call('resetGroup', { topic, group, to });
  }

  deadLetters(
    group: GroupDescriptor,
    limit: number,
    cursor?: string,
  ): Promise<{ messages: DeadLetter[]; nextCursor?: string }> {
    return this.call('deadLetters', { group, limit, cursor });
  }

  resendDeadLetters(
    group: GroupDescriptor,
    messageIds: string[],
  ): Promise<{ messageId: string; ok: boolean; code?: string }[]> {
    return this.call('resendDeadLetters', { group, messageIds });
  }

  topicStats(topic: TopicDescriptor): Promise<TopicStats> {
    return this.call('topicStats', { topic });
  }

  groupStats(topic: TopicDescriptor, group: GroupDescriptor): Promise<GroupStats> {
    return this.call('groupStats', { topic, group });
  }

  dropTopic(topic: TopicDescriptor): Promise<void> {
    return this.call('dropTopic', { topic });
  }

  dropGroup(group: GroupDescriptor): Promise<void> {
    return this.call('dropGroup', { group });
  }

  dropInstance(tenantId: string, instanceId: string): Promise<void> {
    return this.call('dropInstance', { tenantId, instanceId });
  }

  health(): Promise<BrokerHealth> {
    return this.call('health', {});
  }

  commitTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options?: TransactionDecisionOptions,
  ): Promise<void> {
    return this.call('commitTransaction', decision(topic, transactionId, options));
  }

  rollbackTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options?: TransactionDecisionOptions,
  ): Promise<void> {
    return this.call('rollbackTransaction', decision(topic, transactionId, options));
  }

  async checkTransactions(
    topic: TopicDescriptor,
    request: TransactionCheckRequest,
    signal?: AbortSignal,
  ): Promise<CheckedMessage[]> {
    // a broker answers a cancelled check with what it offered before it saw the cancel (offers
    // count and cannot be taken back): taken late, waited for a moment; a broker of an earlier
    // version answers nothing
    let takeLate!: (offers: CheckedMessage[]) => void;
    const late = new Promise<CheckedMessage[]>((resolve) => (takeLate = resolve));
    const onLateAnswer = (frame: Frame): void => {
      const answer =
        frame.kind === FrameKind.response
          ? decodeBrokerRpcResponse('checkTransactions', frame)
          : null;
      takeLate(answer?.status === 'ok' ? answer.response : []);
    };
    try {
      return await this.call(
        'checkTransactions',
        { topic, request },
        request.waitMs + this.longPollMarginMs,
        signal,
        onLateAnswer,
      );
    } catch (error) {
      if (signal?.aborted === true) {
        return Promise.race([late, sleep(LATE_CHECK_WAIT_MS, [], { ref: false })]);
      }
      throw error;
    }
  }

  /** Lets the calls in flight finish, then closes the connection. */
  close(): Promise<void> {
    return this.channel.close();
  }
}

/** A BrokerClient reaching one broker over one TCP connection (length-prefixed frames). */
export function tcpBrokerClient(
  options: TcpChannelOptions & NetworkClientOptions,
): NetworkBrokerClient {
  return new NetworkBrokerClient(new TcpRpcChannel(options), options);
}

/** A BrokerClient reaching one broker over one HTTP/2 session (a stream per call). */
export function http2BrokerClient(
  options: Http2ChannelOptions & NetworkClientOptions,
): NetworkBrokerClient {
  return new NetworkBrokerClient(new Http2RpcChannel(options), options);
}

/** A commit's or rollback's request: `refuseRepeat` only when set (the frame brokers of earlier
 *  versions read). */
function decision(
  topic: TopicDescriptor,
  transactionId: string,
  options: TransactionDecisionOptions | undefined,
): BrokerRpcRequest<'commitTransaction'> {
  return options?.refuseRepeat === true
    ? { topic, transactionId, refuseRepeat: true }
    : { topic, transactionId };
}
