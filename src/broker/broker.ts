// The broker: owns the messages of its queues in one MessageStore and serves publish, receive,
// ack, retry, dead letters, query and statistics (BrokerClient's operations). Messaging arrives
// with issue #5; until then every message operation answers Unavailable.
import { WharfError } from '../errors.js';
import type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  DeadLetter,
  GroupDescriptor,
  GroupStats,
  MessagePage,
  MessageView,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  ResetTarget,
  TimeQuery,
  TopicDescriptor,
  TopicStats,
  TraceEvent,
  VisibilityResult,
} from '../cluster/broker-client.js';

export interface BrokerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BrokerOptions {
  /** The broker's data directory (commit log, consume queues, journal). */
  dataDir: string;
  /** Numeric id of this broker in the cluster (0 for the all-in-one node). */
  brokerId: number;
  /** Secret for message-id and receipt-handle MACs (32 bytes, derived from the master key). */
  macKey: Buffer;
  logger?: BrokerLogger;
}

export class Broker implements BrokerClient {
  private closed = false;

  private constructor(readonly options: BrokerOptions) {}

  static open(options: BrokerOptions): Promise<Broker> {
    return Promise.resolve(new Broker(options));
  }

  private notYet(): Promise<never> {
    return Promise.reject(
      new WharfError('Unavailable', 'messaging is not available on this broker yet'),
    );
  }

  publish(_topic: TopicDescriptor, _messages: PublishMessage[]): Promise<PublishResult[]> {
    return this.notYet();
  }
  receive(
    _t: TopicDescriptor,
    _g: GroupDescriptor,
    _r: ReceiveRequest,
    _s?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    return this.notYet();
  }
  ack(_t: TopicDescriptor, _g: GroupDescriptor, _h: string[]): Promise<AckResult[]> {
    return this.notYet();
  }
  changeVisibility(
    _t: TopicDescriptor,
    _g: GroupDescriptor,
    _h: string,
    _ms: number,
  ): Promise<VisibilityResult> {
    return this.notYet();
  }
  getMessage(_t: TopicDescriptor, _id: string): Promise<MessageView> {
    return this.notYet();
  }
  queryByKey(_t: TopicDescriptor, _key: string, _limit: number): Promise<MessageView[]> {
    return this.notYet();
  }
  queryByTime(_t: TopicDescriptor, _q: TimeQuery): Promise<MessagePage> {
    return this.notYet();
  }
  trace(_t: TopicDescriptor, _id: string): Promise<TraceEvent[]> {
    return this.notYet();
  }
  resetGroup(_t: TopicDescriptor, _g: GroupDescriptor, _to: ResetTarget): Promise<void> {
    return this.notYet();
  }
  deadLetters(
    _g: GroupDescriptor,
    _limit: number,
    _cursor?: string,
  ): Promise<{ messages: DeadLetter[]; nextCursor?: string }> {
    return this.notYet();
  }
  resendDeadLetters(
    _g: GroupDescriptor,
    _ids: string[],
  ): Promise<{ messageId: string; ok: boolean; code?: string }[]> {
    return this.notYet();
  }
  topicStats(_t: TopicDescriptor): Promise<TopicStats> {
    return this.notYet();
  }
  groupStats(_t: TopicDescriptor, _g: GroupDescriptor): Promise<GroupStats> {
    return this.notYet();
  }
  dropTopic(_t: TopicDescriptor): Promise<void> {
    return Promise.resolve();
  }
  dropGroup(_g: GroupDescriptor): Promise<void> {
    return Promise.resolve();
  }
  health(): Promise<BrokerHealth> {
    return Promise.resolve(this.closed ? { ready: false, detail: 'closed' } : { ready: true });
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
