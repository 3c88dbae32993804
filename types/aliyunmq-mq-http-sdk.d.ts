// The part of @aliyunmq/mq-http-sdk's API (1.0.4) that tests, the example and the e2e bench use
// (the package ships no types). Every field of an answer is a string, as the SDK leaves them.
// CommonJS whose exports node cannot name statically: import the default, use its members.
declare module '@aliyunmq/mq-http-sdk' {
  export interface MQResponse<B> {
    code: number;
    requestId: string;
    body: B;
  }
  export interface MQError extends Error {
    Code: string;
    RequestId: string;
  }
  export interface PublishedMessage {
    MessageId: string;
    MessageBodyMD5: string;
    ReceiptHandle?: string;
  }
  export interface ConsumedMessage {
    MessageId: string;
    ReceiptHandle: string;
    MessageBody: string;
    MessageBodyMD5: string;
    PublishTime: string;
    FirstConsumeTime: string;
    NextConsumeTime: string;
    ConsumedTimes: string;
    MessageTag?: string;
    MessageKey?: string;
    ShardingKey?: string;
    StartDeliverTime?: number;
    Properties: Record<string, string>;
  }
  export interface HandleFailure {
    ErrorCode: string;
    ErrorMessage: string;
    ReceiptHandle: string;
  }
  export class MessageProperties {
    messageKey(key: string): void;
    startDeliverTime(timeMillis: number): void;
    transCheckImmunityTime(timeSeconds: number): void;
    shardingKey(key: string): void;
    putProperty(key: string, value: string): void;
    getProperties(): Record<string, string>;
  }
  export class MQProducer {
    publishMessage(
      body: string,
      tag?: string,
      props?: MessageProperties,
    ): Promise<MQResponse<PublishedMessage>>;
  }
  export class MQTransProducer extends MQProducer {
    consumeHalfMessage(
      numOfMessages: number,
      waitSeconds?: number,
    ): Promise<MQResponse<ConsumedMessage[]>>;
    commit(receiptHandle: string): Promise<MQResponse<HandleFailure[] | undefined>>;
    rollback(receiptHandle: string): Promise<MQResponse<HandleFailure[] | undefined>>;
  }
  export class MQConsumer {
    consumeMessage(
      numOfMessages: number,
      waitSeconds?: number,
    ): Promise<MQResponse<ConsumedMessage[]>>;
    consumeMessageOrderly(
      numOfMessages: number,
      waitSeconds?: number,
    ): Promise<MQResponse<ConsumedMessage[]>>;
    ackMessage(receiptHandles: string[]): Promise<MQResponse<HandleFailure[] | undefined>>;
  }
  export class MQClient {
    constructor(
      endpoint: string,
      accessKeyId: string,
      accessKeySecret: string,
      securityToken?: string,
    );
    getProducer(instanceId: string, topic: string): MQProducer;
    getTransProducer(instanceId: string, topic: string, groupId: string): MQTransProducer;
    getConsumer(
      instanceId: string,
      topic: string,
      consumer: string,
      messageTag?: string,
    ): MQConsumer;
  }
  const sdk: {
    MQClient: typeof MQClient;
    MessageProperties: typeof MessageProperties;
  };
  export default sdk;
}
