// A BrokerClient that records every call and answers what a test sets, for testing what the
// gateway decides and encodes without a real broker: `startWharf(t, { brokers: fake })`.
//   const fake = new FakeBroker();
//   fake.answers.publish = (topic, messages) => messages.map((m, i) => ({ messageId: `m${i}`, … }));
//   … fake.calls  // [{ method: 'publish', args: [topic, messages] }, …]
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
} from '../../src/cluster/index.js';
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
} from '../../src/model/index.js';
import { WharfError } from '../../src/errors.js';

export interface FakeCall {
  method: string;
  args: unknown[];
}

type Answer<A extends unknown[], R> = (...args: A) => R | Promise<R>;

export class FakeBroker implements BrokerClient {
  readonly calls: FakeCall[] = [];
  answers: {
    publish?: Answer<[TopicDescriptor, PublishMessage[]], PublishResult[]>;
    receive?: Answer<
      [TopicDescriptor, GroupDescriptor, ReceiveRequest, AbortSignal | undefined],
      ReceivedMessage[]
    >;
    ack?: Answer<[TopicDescriptor, GroupDescriptor, string[]], AckResult[]>;
    getMessage?: Answer<[TopicDescriptor, string], MessageView>;
    queryByKey?: Answer<[TopicDescriptor, string, number], MessageView[]>;
    queryByTime?: Answer<[TopicDescriptor, TimeQuery], MessagePage>;
    deadLetters?: Answer<
      [GroupDescriptor, number, string | undefined],
      { messages: DeadLetter[]; nextCursor?: string }
    >;
  } = {};

  private record(method: string, args: unknown[]) {
    this.calls.push({ method, args });
  }
  last(method: string): unknown[] | undefined {
    return this.calls.filter((c) => c.method === method).at(-1)?.args;
  }

  async publish(topic: TopicDescriptor, messages: PublishMessage[]) {
    this.record('publish', [topic, messages]);
    if (this.answers.publish) return this.answers.publish(topic, messages);
    return messages.map((_m, i) => ({
      messageId: `msg-${i}`,
      queueId: i % topic.queueCount,
      bodyMd5: 'md5',
    }));
  }
  async receive(t: TopicDescriptor, g: GroupDescriptor, r: ReceiveRequest, s?: AbortSignal) {
    this.record('receive', [t, g, r, s]);
    return this.answers.receive ? this.answers.receive(t, g, r, s) : [];
  }
  async ack(t: TopicDescriptor, g: GroupDescriptor, handles: string[]) {
    this.record('ack', [t, g, handles]);
    if (this.answers.ack) return this.answers.ack(t, g, handles);
    return handles.map((receiptHandle) => ({ receiptHandle, ok: true as const }));
  }
  async returnMessages(t: TopicDescriptor, g: GroupDescriptor, handles: string[]) {
    this.record('returnMessages', [t, g, handles]);
  }
  async changeVisibility(
    t: TopicDescriptor,
    g: GroupDescriptor,
    h: string,
    ms: number,
  ): Promise<VisibilityResult> {
    this.record('changeVisibility', [t, g, h, ms]);
    return { receiptHandle: h, nextVisibleTime: 1000 + ms };
  }
  async getMessage(t: TopicDescriptor, id: string) {
    this.record('getMessage', [t, id]);
    if (this.answers.getMessage) return this.answers.getMessage(t, id);
    throw new WharfError('MessageNotFound', 'no such message');
  }
  async cancelMessage(t: TopicDescriptor, id: string) {
    this.record('cancelMessage', [t, id]);
  }
  async queryByKey(t: TopicDescriptor, key: string, limit: number) {
    this.record('queryByKey', [t, key, limit]);
    return this.answers.queryByKey ? this.answers.queryByKey(t, key, limit) : [];
  }
  async queryByTime(t: TopicDescriptor, q: TimeQuery) {
    this.record('queryByTime', [t, q]);
    return this.answers.queryByTime ? this.answers.queryByTime(t, q) : { messages: [] };
  }
  async trace(t: TopicDescriptor, id: string): Promise<TraceEvent[]> {
    this.record('trace', [t, id]);
    return [{ type: 'PUBLISHED', time: 1 }];
  }
  async resetGroup(t: TopicDescriptor, g: GroupDescriptor, to: ResetTarget) {
    this.record('resetGroup', [t, g, to]);
  }
  async deadLetters(g: GroupDescriptor, limit: number, cursor?: string) {
    this.record('deadLetters', [g, limit, cursor]);
    return this.answers.deadLetters ? this.answers.deadLetters(g, limit, cursor) : { messages: [] };
  }
  async resendDeadLetters(g: GroupDescriptor, ids: string[]) {
    this.record('resendDeadLetters', [g, ids]);
    return ids.map((messageId) => ({ messageId, ok: true }));
  }
  async topicStats(t: TopicDescriptor): Promise<TopicStats> {
    this.record('topicStats', [t]);
    return {
      messagesIn: 1,
      bytesIn: 2,
      publishRatePerSecond: 0.5,
      queues: [{ queueId: 0, minOffset: 0, maxOffset: 1 }],
    };
  }
  async groupStats(t: TopicDescriptor, g: GroupDescriptor): Promise<GroupStats> {
    this.record('groupStats', [t, g]);
    return {
      backlog: 3,
      inflight: 1,
      oldestUnackedAgeMs: 10,
      deliveredRatePerSecond: 1,
      ackedRatePerSecond: 1,
      retries: 0,
      deadLetters: 0,
    };
  }
  async dropTopic(t: TopicDescriptor) {
    this.record('dropTopic', [t]);
  }
  async dropGroup(g: GroupDescriptor) {
    this.record('dropGroup', [g]);
  }
  async dropInstance(tenantId: string, instanceId: string) {
    this.record('dropInstance', [tenantId, instanceId]);
  }
  async health(): Promise<BrokerHealth> {
    return { ready: true };
  }
  async close() {}
  // ---- transactions ----
  async commitTransaction(topic: TopicDescriptor, transactionId: string) {
    this.record('commitTransaction', [topic, transactionId]);
  }
  async rollbackTransaction(topic: TopicDescriptor, transactionId: string) {
    this.record('rollbackTransaction', [topic, transactionId]);
  }
  async checkTransactions(
    topic: TopicDescriptor,
    request: TransactionCheckRequest,
    signal?: AbortSignal,
  ): Promise<CheckedMessage[]> {
    this.record('checkTransactions', [topic, request, signal]);
    return [];
  }
}
