// The operation table of broker RPC, payload grammar v1: one entry per BrokerClient call, its
// number on the wire and its request and response payloads. Publish, receive and ack are the hot
// paths and are binary (bodies raw, descriptors as checked JSON); the rare operations are JSON
// checked by shapes, with bodies as raw blobs after it. Numbers are never reused: a new call
// takes the next number, a new optional field a new tag; a changed layout is a new version.
//
//   descriptor  = json (TopicDescriptor | GroupDescriptor)
//   encoding    = u8 (0 utf8, 1 base64)
//   publish  1  req: descriptor topic, list<encoding, bytes body, tagged{1 tag str, 2 keys list<str>,
//                    3 properties map, 4 shardingKey str, 5 dedupId str, 6 deliverAtMs f64,
//                    7 queueId u32 (the gateway's choice; added for the cluster, issue #11),
//                    8 requestId str (the gateway's call id, for publish fences)}>
//               res: list<str messageId, u32 queueId, str bodyMd5, tagged{1 duplicate u8,
//                    2 transactionId str}>
//   receive  2  req: descriptor topic, descriptor group, u32 maxMessages, f64 waitMs, str tags,
//                    tagged{1 invisibleMs f64, 2 consumerId str, 3 maxBodyBytes u32 (added to
//                    cap answers in the broker; a broker before it ignores it)}
//               res: list<str messageId, str receiptHandle, u32 queueId, f64 queueOffset,
//                    f64 publishTime, f64 firstDeliveryTime, u32 deliveryAttempt,
//                    f64 nextVisibleTime, encoding, bytes body, opt<str> tag, list<str> keys,
//                    map properties, opt<str> shardingKey, tagged{1 deliverAt f64 (a delayed
//                    message's due time; added for the MQ HTTP routes, a gateway before it
//                    skips it)}>
//   ack      3  req: descriptor topic, descriptor group, list<str receiptHandle>
//               res: list<str receiptHandle, u8 status (0 ok, 1 ReceiptHandleExpired,
//                    2 InvalidReceiptHandle)>
//   4..21       req and res: json, u32 blobCount, bytes blob* (see the table below)
import type {
  CheckedMessage,
  GroupDescriptor,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
  TransactionCheckRequest,
} from '../../model/index.js';
import { BROKER_RPC_VERSION, FRAME_HEADER_BYTES, FrameKind, writeFrameHeader } from './frame.js';
import type { Frame } from './frame.js';
import {
  brokerHealthShape,
  checkedMessageShape,
  deadLetterPageShape,
  groupDescriptorShape,
  groupStatsShape,
  messagePageShape,
  messageViewShape,
  resendResultShape,
  resetTargetShape,
  timeQueryShape,
  topicDescriptorShape,
  topicStatsShape,
  traceEventShape,
  transactionCheckRequestShape,
  visibilityResultShape,
} from './model-shapes.js';
import type {
  BrokerHealth,
  DeadLetterPage,
  GroupStats,
  MessagePage,
  ResendResult,
  ResetTarget,
  TimeQuery,
  TopicStats,
  VisibilityResult,
} from './model-shapes.js';
import { CorruptPayload, PayloadReader, PayloadWriter } from './payload.js';
import {
  array,
  boolean,
  extractBlobs,
  nothing,
  number,
  object,
  optional,
  string,
  type Shape,
} from './shape.js';
import type { MessageView, TraceEvent } from '../../model/index.js';

export type AckResult =
  | { receiptHandle: string; ok: true }
  | { receiptHandle: string; ok: false; code: 'ReceiptHandleExpired' | 'InvalidReceiptHandle' };

export interface OperationCodec<Req, Res> {
  readonly code: number;
  encodeRequest(w: PayloadWriter, request: Req): void;
  decodeRequest(r: PayloadReader): Req;
  encodeResponse(w: PayloadWriter, response: Res): void;
  decodeResponse(r: PayloadReader): Res;
}

const ENCODINGS = ['utf8', 'base64'] as const;

function writeEncoding(w: PayloadWriter, encoding: 'utf8' | 'base64'): void {
  w.u8(encoding === 'utf8' ? 0 : 1);
}

function readEncoding(r: PayloadReader): 'utf8' | 'base64' {
  const value = r.u8();
  const encoding = ENCODINGS[value];
  if (encoding === undefined) throw new CorruptPayload(`body encoding ${value}`);
  return encoding;
}

function readShaped<T>(r: PayloadReader, shape: Shape<T>): T {
  return shape(r.json(), '', { blobs: [] });
}

const readTopic = (r: PayloadReader): TopicDescriptor => readShaped(r, topicDescriptorShape);
const readGroup = (r: PayloadReader): GroupDescriptor => readShaped(r, groupDescriptorShape);

const publish: OperationCodec<
  { topic: TopicDescriptor; messages: PublishMessage[] },
  PublishResult[]
> = {
  code: 1,
  encodeRequest(w, { topic, messages }) {
    w.json(topic).u32(messages.length);
    for (const m of messages) {
      writeEncoding(w, m.bodyEncoding);
      w.bytes(m.body).tagged([
        m.tag === undefined ? undefined : [1, (f) => f.str(m.tag ?? '')],
        m.keys === undefined ? undefined : [2, (f) => f.strList(m.keys ?? [])],
        m.properties === undefined ? undefined : [3, (f) => f.map(m.properties ?? {})],
        m.shardingKey === undefined ? undefined : [4, (f) => f.str(m.shardingKey ?? '')],
        m.dedupId === undefined ? undefined : [5, (f) => f.str(m.dedupId ?? '')],
        m.deliverAtMs === undefined ? undefined : [6, (f) => f.f64(m.deliverAtMs ?? 0)],
        m.queueId === undefined ? undefined : [7, (f) => f.u32(m.queueId ?? 0)],
        m.requestId === undefined ? undefined : [8, (f) => f.str(m.requestId ?? '')],
      ]);
    }
  },
  decodeRequest(r) {
    const topic = readTopic(r);
    const count = r.count(6);
    const messages: PublishMessage[] = [];
    for (let i = 0; i < count; i++) {
      const bodyEncoding = readEncoding(r);
      const m: PublishMessage = { body: r.bytes(), bodyEncoding };
      r.tagged({
        1: (f) => (m.tag = f.str()),
        2: (f) => (m.keys = f.strList()),
        3: (f) => (m.properties = f.map()),
        4: (f) => (m.shardingKey = f.str()),
        5: (f) => (m.dedupId = f.str()),
        6: (f) => (m.deliverAtMs = f.f64()),
        7: (f) => (m.queueId = f.u32()),
        8: (f) => (m.requestId = f.str()),
      });
      messages.push(m);
    }
    return { topic, messages };
  },
  encodeResponse(w, results) {
    w.u32(results.length);
    for (const result of results) {
      w.str(result.messageId).u32(result.queueId).str(result.bodyMd5);
      w.tagged([
        result.duplicate === undefined ? undefined : [1, (f) => f.u8(result.duplicate ? 1 : 0)],
        result.transactionId === undefined
          ? undefined
          : [2, (f) => f.str(result.transactionId ?? '')],
      ]);
    }
  },
  decodeResponse(r) {
    const count = r.count(13);
    const results: PublishResult[] = [];
    for (let i = 0; i < count; i++) {
      const result: PublishResult = { messageId: r.str(), queueId: r.u32(), bodyMd5: r.str() };
      r.tagged({
        1: (f) => (result.duplicate = f.u8() === 1),
        2: (f) => (result.transactionId = f.str()),
      });
      results.push(result);
    }
    return results;
  },
};

const receive: OperationCodec<
  { topic: TopicDescriptor; group: GroupDescriptor; request: ReceiveRequest },
  ReceivedMessage[]
> = {
  code: 2,
  encodeRequest(w, { topic, group, request }) {
    w.json(topic).json(group).u32(request.maxMessages).f64(request.waitMs).str(request.tags);
    w.tagged([
      request.invisibleMs === undefined ? undefined : [1, (f) => f.f64(request.invisibleMs ?? 0)],
      request.consumerId === undefined ? undefined : [2, (f) => f.str(request.consumerId ?? '')],
      request.maxBodyBytes === undefined ? undefined : [3, (f) => f.u32(request.maxBodyBytes ?? 0)],
    ]);
  },
  decodeRequest(r) {
    const topic = readTopic(r);
    const group = readGroup(r);
    const request: ReceiveRequest = { maxMessages: r.u32(), waitMs: r.f64(), tags: r.str() };
    r.tagged({
      1: (f) => (request.invisibleMs = f.f64()),
      2: (f) => (request.consumerId = f.str()),
      3: (f) => (request.maxBodyBytes = f.u32()),
    });
    return { topic, group, request };
  },
  encodeResponse(w, messages) {
    w.u32(messages.length);
    for (const m of messages) {
      w.str(m.messageId).str(m.receiptHandle).u32(m.queueId).f64(m.queueOffset);
      w.f64(m.publishTime).f64(m.firstDeliveryTime).u32(m.deliveryAttempt).f64(m.nextVisibleTime);
      writeEncoding(w, m.bodyEncoding);
      w.bytes(m.body).optStr(m.tag).strList(m.keys).map(m.properties).optStr(m.shardingKey);
      w.tagged([m.deliverAt === undefined ? undefined : [1, (f) => f.f64(m.deliverAt ?? 0)]]);
    }
  },
  decodeResponse(r) {
    const count = r.count(64);
    const messages: ReceivedMessage[] = [];
    for (let i = 0; i < count; i++) {
      const message: ReceivedMessage = {
        messageId: r.str(),
        receiptHandle: r.str(),
        queueId: r.u32(),
        queueOffset: r.f64(),
        publishTime: r.f64(),
        firstDeliveryTime: r.f64(),
        deliveryAttempt: r.u32(),
        nextVisibleTime: r.f64(),
        bodyEncoding: readEncoding(r),
        body: r.bytes(),
        tag: r.optStr(),
        keys: r.strList(),
        properties: r.map(),
        shardingKey: r.optStr(),
      };
      r.tagged({ 1: (f) => (message.deliverAt = f.f64()) });
      messages.push(message);
    }
    return messages;
  },
};

const ACK_STATUSES = [undefined, 'ReceiptHandleExpired', 'InvalidReceiptHandle'] as const;

const ack: OperationCodec<
  { topic: TopicDescriptor; group: GroupDescriptor; receiptHandles: string[] },
  AckResult[]
> = {
  code: 3,
  encodeRequest(w, { topic, group, receiptHandles }) {
    w.json(topic).json(group).strList(receiptHandles);
  },
  decodeRequest(r) {
    return { topic: readTopic(r), group: readGroup(r), receiptHandles: r.strList() };
  },
  encodeResponse(w, results) {
    w.u32(results.length);
    for (const result of results) {
      w.str(result.receiptHandle).u8(result.ok ? 0 : ACK_STATUSES.indexOf(result.code));
    }
  },
  decodeResponse(r) {
    const count = r.count(5);
    const results: AckResult[] = [];
    for (let i = 0; i < count; i++) {
      const receiptHandle = r.str();
      const status = r.u8();
      const code = ACK_STATUSES[status];
      if (status === 0) results.push({ receiptHandle, ok: true });
      else if (code !== undefined) results.push({ receiptHandle, ok: false, code });
      else throw new CorruptPayload(`ack status ${status}`);
    }
    return results;
  },
};

/** A rare operation: request and response as JSON checked by shapes, bodies as blobs after it. */
function jsonOperation<Req, Res>(
  code: number,
  requestShape: Shape<Req>,
  responseShape: Shape<Res>,
): OperationCodec<Req, Res> {
  const write = (w: PayloadWriter, value: unknown): void => {
    const { json, blobs } = extractBlobs(value);
    w.json(json ?? null).u32(blobs.length);
    for (const blob of blobs) w.bytes(blob);
  };
  const read = <T>(r: PayloadReader, shape: Shape<T>): T => {
    const json = r.json();
    const count = r.count(4);
    const blobs: Buffer[] = [];
    for (let i = 0; i < count; i++) blobs.push(r.bytes());
    return shape(json, '', { blobs });
  };
  return {
    code,
    encodeRequest: write,
    decodeRequest: (r) => read(r, requestShape),
    encodeResponse: write,
    decodeResponse: (r) => read(r, responseShape),
  };
}

const topicOnly = object({ topic: topicDescriptorShape });

/** A commit or rollback. `refuseRepeat` (a repeat of the decision made is Conflict) is left out
 *  unless set: a broker of an earlier version reads the frame as before and ignores it. */
export interface TransactionDecision {
  topic: TopicDescriptor;
  transactionId: string;
  refuseRepeat?: true;
}

const transactionDecision: Shape<TransactionDecision> = (value, path, context) => {
  const checked = object({
    topic: topicDescriptorShape,
    transactionId: string,
    refuseRepeat: optional(boolean),
  })(value, path, context);
  const { refuseRepeat, ...decision } = checked;
  return refuseRepeat === true ? { ...decision, refuseRepeat } : decision;
};

/** Every operation by its BrokerClient method name. */
export const OPERATIONS = {
  publish,
  receive,
  ack,
  changeVisibility: jsonOperation<
    { topic: TopicDescriptor; group: GroupDescriptor; receiptHandle: string; invisibleMs: number },
    VisibilityResult
  >(
    4,
    object({
      topic: topicDescriptorShape,
      group: groupDescriptorShape,
      receiptHandle: string,
      invisibleMs: number,
    }),
    visibilityResultShape,
  ),
  getMessage: jsonOperation<{ topic: TopicDescriptor; messageId: string }, MessageView>(
    5,
    object({ topic: topicDescriptorShape, messageId: string }),
    messageViewShape,
  ),
  queryByKey: jsonOperation<{ topic: TopicDescriptor; key: string; limit: number }, MessageView[]>(
    6,
    object({ topic: topicDescriptorShape, key: string, limit: number }),
    array(messageViewShape),
  ),
  queryByTime: jsonOperation<{ topic: TopicDescriptor; query: TimeQuery }, MessagePage>(
    7,
    object({ topic: topicDescriptorShape, query: timeQueryShape }),
    messagePageShape,
  ),
  trace: jsonOperation<{ topic: TopicDescriptor; messageId: string }, TraceEvent[]>(
    8,
    object({ topic: topicDescriptorShape, messageId: string }),
    array(traceEventShape),
  ),
  resetGroup: jsonOperation<
    { topic: TopicDescriptor; group: GroupDescriptor; to: ResetTarget },
    void
  >(
    9,
    object({ topic: topicDescriptorShape, group: groupDescriptorShape, to: resetTargetShape }),
    nothing,
  ),
  deadLetters: jsonOperation<
    { group: GroupDescriptor; limit: number; cursor?: string },
    DeadLetterPage
  >(
    10,
    object({ group: groupDescriptorShape, limit: number, cursor: optional(string) }),
    deadLetterPageShape,
  ),
  resendDeadLetters: jsonOperation<
    { group: GroupDescriptor; messageIds: string[] },
    ResendResult[]
  >(
    11,
    object({ group: groupDescriptorShape, messageIds: array(string) }),
    array(resendResultShape),
  ),
  topicStats: jsonOperation<{ topic: TopicDescriptor }, TopicStats>(12, topicOnly, topicStatsShape),
  groupStats: jsonOperation<{ topic: TopicDescriptor; group: GroupDescriptor }, GroupStats>(
    13,
    object({ topic: topicDescriptorShape, group: groupDescriptorShape }),
    groupStatsShape,
  ),
  dropTopic: jsonOperation<{ topic: TopicDescriptor }, void>(14, topicOnly, nothing),
  dropGroup: jsonOperation<{ group: GroupDescriptor }, void>(
    15,
    object({ group: groupDescriptorShape }),
    nothing,
  ),
  dropInstance: jsonOperation<{ tenantId: string; instanceId: string }, void>(
    16,
    object({ tenantId: string, instanceId: string }),
    nothing,
  ),
  health: jsonOperation<Record<string, never>, BrokerHealth>(17, object({}), brokerHealthShape),
  commitTransaction: jsonOperation<TransactionDecision, void>(18, transactionDecision, nothing),
  rollbackTransaction: jsonOperation<TransactionDecision, void>(19, transactionDecision, nothing),
  checkTransactions: jsonOperation<
    { topic: TopicDescriptor; request: TransactionCheckRequest },
    CheckedMessage[]
  >(
    20,
    object({ topic: topicDescriptorShape, request: transactionCheckRequestShape }),
    array(checkedMessageShape),
  ),
  returnMessages: jsonOperation<
    { topic: TopicDescriptor; group: GroupDescriptor; receiptHandles: string[] },
    void
  >(
    22,
    object({
      topic: topicDescriptorShape,
      group: groupDescriptorShape,
      receiptHandles: array(string),
    }),
    nothing,
  ),
  cancelMessage: jsonOperation<{ topic: TopicDescriptor; messageId: string }, void>(
    21,
    object({ topic: topicDescriptorShape, messageId: string }),
    nothing,
  ),
} as const;

export type OperationName = keyof typeof OPERATIONS;
type CodecOf<K extends OperationName> = (typeof OPERATIONS)[K];
export type RequestOf<K extends OperationName> =
  CodecOf<K> extends OperationCodec<infer Req, unknown> ? Req : never;
export type ResponseOf<K extends OperationName> =
  CodecOf<K> extends OperationCodec<unknown, infer Res> ? Res : never;

const BY_CODE = new Map<number, OperationName>(
  Object.entries(OPERATIONS).map(([name, codec]) => [codec.code, name as OperationName]),
);

/** The operation a frame's `op` names; undefined for a number this version does not know. */
export function operationOf(op: number): OperationName | undefined {
  return BY_CODE.get(op);
}

function frameOf(
  kind: FrameKind,
  name: OperationName,
  requestId: number,
  sizeHint: number,
  write: (w: PayloadWriter) => void,
): Buffer {
  const w = new PayloadWriter(sizeHint, FRAME_HEADER_BYTES);
  write(w);
  const out = w.finish();
  writeFrameHeader(
    out,
    { version: BROKER_RPC_VERSION, kind, requestId, op: OPERATIONS[name].code },
    out.length - FRAME_HEADER_BYTES,
  );
  return out;
}

/** Bodies plus `perMessage` bytes each: a payload's size before its buffer would have to grow. */
function bodyBytes(messages: readonly { body: Buffer }[], perMessage: number): number {
  let total = 0;
  for (const m of messages) total += m.body.length + perMessage;
  return total;
}

/** A received message's fields besides its body: ids, numbers and an empty tag, keys and
 *  properties take about 150 bytes (a longer tag or properties grow the buffer once). */
const RECEIVED_FIELD_BYTES = 192;

/** A request frame: header and payload in one buffer, bodies copied once. */
export function encodeRequest<K extends OperationName>(
  name: K,
  requestId: number,
  request: RequestOf<K>,
): Buffer {
  const codec = OPERATIONS[name] as OperationCodec<RequestOf<K>, ResponseOf<K>>;
  const hint =
    name === 'publish' ? bodyBytes((request as RequestOf<'publish'>).messages, 64) + 512 : 512;
  return frameOf(FrameKind.request, name, requestId, hint, (w) => codec.encodeRequest(w, request));
}

/** A response frame to a request of `name`. */
export function encodeResponse<K extends OperationName>(
  name: K,
  requestId: number,
  response: ResponseOf<K>,
): Buffer {
  const codec = OPERATIONS[name] as OperationCodec<RequestOf<K>, ResponseOf<K>>;
  const hint =
    name === 'receive'
      ? bodyBytes(response as ResponseOf<'receive'>, RECEIVED_FIELD_BYTES) + 64
      : 256;
  return frameOf(FrameKind.response, name, requestId, hint, (w) =>
    codec.encodeResponse(w, response),
  );
}

/** The cancel frame of a call the caller gave up. */
export function encodeCancel(name: OperationName, requestId: number): Buffer {
  return frameOf(FrameKind.cancel, name, requestId, 0, () => undefined);
}

export type DecodedRequest = {
  [K in OperationName]: { status: 'ok'; name: K; request: RequestOf<K> };
}[OperationName];

/** A request frame's call; `unsupported` for a version or operation this code does not know. */
export function decodeRequest(
  frame: Frame,
): DecodedRequest | { status: 'unsupported' | 'corrupt'; reason: string } {
  if (frame.version !== BROKER_RPC_VERSION) {
    return { status: 'unsupported', reason: `payload version ${frame.version}` };
  }
  const name = operationOf(frame.op);
  if (name === undefined) return { status: 'unsupported', reason: `operation ${frame.op}` };
  const decoded = decodeWith(frame.payload, (r) => OPERATIONS[name].decodeRequest(r));
  if (decoded.status !== 'ok') return decoded;
  // name and request come from the same table entry
  return { status: 'ok', name, request: decoded.value } as DecodedRequest;
}

/** A response frame's answer to a call of `name`. */
export function decodeResponse<K extends OperationName>(
  name: K,
  frame: Frame,
): { status: 'ok'; response: ResponseOf<K> } | { status: 'corrupt'; reason: string } {
  if (frame.version !== BROKER_RPC_VERSION || frame.op !== OPERATIONS[name].code) {
    return { status: 'corrupt', reason: `answer of version ${frame.version} op ${frame.op}` };
  }
  const codec = OPERATIONS[name] as OperationCodec<RequestOf<K>, ResponseOf<K>>;
  const decoded = decodeWith(frame.payload, (r) => codec.decodeResponse(r));
  return decoded.status === 'ok' ? { status: 'ok', response: decoded.value } : decoded;
}

function decodeWith<T>(
  payload: Buffer,
  read: (r: PayloadReader) => T,
): { status: 'ok'; value: T } | { status: 'corrupt'; reason: string } {
  try {
    const r = new PayloadReader(payload);
    const value = read(r);
    r.expectEnd();
    return { status: 'ok', value };
  } catch (error) {
    if (error instanceof CorruptPayload) return { status: 'corrupt', reason: error.message };
    throw error;
  }
}

export { decodeWith as decodePayload };
