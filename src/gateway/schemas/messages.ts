// Schemas of the message routes (publish, receive, ack, visibility, query, trace, reset, dead
// letters, statistics). Input limits of API.md are here; the rules that span fields (delay on
// FIFO, sizes after decoding, BROADCASTING needs consumerId) are checked in the routes.
import { TRACE_EVENT_TYPES } from '../../model/index.js';
import { epochMs, epochMsQuery } from './common.js';

export const MAX_BATCH_MESSAGES = 32;
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const MAX_DELAY_SECONDS = 40 * 24 * 3600;
export const MAX_ACK_HANDLES = 100;

const shortString = (description: string, maxLength = 128) => ({
  type: 'string',
  minLength: 1,
  maxLength,
  description,
});

export const TAG_PATTERN = '^[^|*\\s]{1,128}$';
export const TAG_FILTER_PATTERN = '^(\\*|[^|*\\s]{1,128}(\\|\\|[^|*\\s]{1,128}){0,31})$';

const PublishMessage = {
  $id: 'PublishMessage',
  type: 'object',
  required: ['body'],
  properties: {
    body: { type: 'string', description: 'text, or base64 when bodyEncoding is base64' },
    bodyEncoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8' },
    tag: {
      type: 'string',
      pattern: TAG_PATTERN,
      description:
        '1 to 128 characters and at most 255 UTF-8 bytes (400 InvalidArgument past it); ' +
        'no `|`, `*` or whitespace',
    },
    keys: { type: 'array', maxItems: 32, items: shortString('a message key') },
    properties: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { minLength: 1, maxLength: 128 },
      additionalProperties: { type: 'string', maxLength: 16384 },
    },
    shardingKey: shortString('picks the queue: same key, same queue, same order'),
    dedupId: shortString('a publish repeating a stored dedupId within the window stores nothing'),
    deliverAt: {
      ...epochMs,
      minimum: 0,
      description:
        'deliver at this time (past = now; at most 40 days ahead); not with delaySeconds',
    },
    delaySeconds: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_DELAY_SECONDS,
      description: 'deliver after this delay; not with deliverAt; NORMAL and DELAY topics only',
    },
  },
} as const;

const PublishResult = {
  $id: 'PublishResult',
  type: 'object',
  required: ['messageId', 'queueId', 'bodyMd5'],
  properties: {
    messageId: { type: 'string' },
    queueId: { type: 'integer' },
    bodyMd5: { type: 'string', description: 'MD5 (hex) of the decoded body' },
    duplicate: { type: 'boolean', description: 'true: a stored dedupId; nothing was stored' },
    transactionId: { type: 'string', description: 'TRANSACTION topics: commit or roll back' },
  },
} as const;

const nullableString = { type: ['string', 'null'] } as const;
const properties = { type: 'object', additionalProperties: { type: 'string' } } as const;
const keys = { type: 'array', items: { type: 'string' } } as const;

const ReceivedMessage = {
  $id: 'ReceivedMessage',
  type: 'object',
  required: [
    'messageId',
    'receiptHandle',
    'body',
    'bodyEncoding',
    'tag',
    'keys',
    'properties',
    'shardingKey',
    'queueId',
    'queueOffset',
    'publishTime',
    'firstDeliveryTime',
    'deliveryAttempt',
    'nextVisibleTime',
  ],
  properties: {
    messageId: { type: 'string' },
    receiptHandle: { type: 'string', description: 'opaque; ack or change visibility with it' },
    body: { type: 'string' },
    bodyEncoding: { type: 'string', enum: ['utf8', 'base64'] },
    tag: nullableString,
    keys,
    properties,
    shardingKey: nullableString,
    queueId: { type: 'integer' },
    queueOffset: { type: 'integer' },
    publishTime: epochMs,
    firstDeliveryTime: epochMs,
    deliveryAttempt: { type: 'integer' },
    nextVisibleTime: epochMs,
  },
} as const;

const MessageView = {
  $id: 'MessageView',
  type: 'object',
  required: [
    'messageId',
    'topic',
    'queueId',
    'queueOffset',
    'body',
    'bodyEncoding',
    'tag',
    'keys',
    'properties',
    'shardingKey',
    'publishTime',
  ],
  properties: {
    messageId: { type: 'string' },
    topic: { type: 'string' },
    queueId: { type: 'integer' },
    queueOffset: { type: 'integer' },
    body: { type: 'string' },
    bodyEncoding: { type: 'string', enum: ['utf8', 'base64'] },
    tag: nullableString,
    keys,
    properties,
    shardingKey: nullableString,
    publishTime: epochMs,
    deliverAt: epochMs,
    scheduleState: {
      type: 'string',
      enum: ['SCHEDULED', 'CANCELLED', 'DELIVERED'],
      description:
        'delayed messages only: SCHEDULED until deliverAt (queueOffset -1), CANCELLED, or ' +
        'DELIVERED (then queue position and groups are those of the delivered message)',
    },
    groups: {
      type: 'array',
      description: 'the state of the message in each group that has read the topic',
      items: {
        type: 'object',
        required: ['group', 'state', 'deliveryAttempt'],
        properties: {
          group: { type: 'string' },
          consumerId: { type: 'string', description: 'BROADCASTING groups: per consumer' },
          state: {
            type: 'string',
            enum: ['PENDING', 'INFLIGHT', 'ACKED', 'DEAD_LETTERED', 'FILTERED'],
          },
          deliveryAttempt: { type: 'integer' },
        },
      },
    },
  },
} as const;

const DeadLetter = {
  $id: 'DeadLetter',
  type: 'object',
  required: [
    'messageId',
    'topic',
    'body',
    'bodyEncoding',
    'tag',
    'keys',
    'properties',
    'publishTime',
    'deadLetteredAt',
    'deliveryAttempt',
  ],
  properties: {
    messageId: { type: 'string' },
    topic: { type: 'string' },
    body: { type: 'string' },
    bodyEncoding: { type: 'string', enum: ['utf8', 'base64'] },
    tag: nullableString,
    keys,
    properties,
    publishTime: epochMs,
    deadLetteredAt: epochMs,
    deliveryAttempt: { type: 'integer' },
  },
} as const;

const TraceEvent = {
  $id: 'TraceEvent',
  type: 'object',
  required: ['type', 'time'],
  properties: {
    type: {
      type: 'string',
      enum: [...TRACE_EVENT_TYPES],
    },
    time: epochMs,
    group: { type: 'string' },
    consumerId: { type: 'string' },
    deliveryAttempt: { type: 'integer' },
    queueId: { type: 'integer' },
    checkCount: {
      type: 'integer',
      description: 'CHECKED and automatic ROLLED_BACK: check-back offers so far',
    },
    reason: {
      type: 'string',
      enum: ['CHECK_LIMIT', 'AGE_LIMIT'],
      description: 'an automatic ROLLED_BACK: offers unanswered, or 24 h undecided',
    },
  },
} as const;

const TopicStats = {
  $id: 'TopicStats',
  type: 'object',
  required: ['messagesIn', 'bytesIn', 'publishRatePerSecond', 'queues'],
  properties: {
    messagesIn: { type: 'integer' },
    bytesIn: { type: 'integer' },
    publishRatePerSecond: { type: 'number' },
    queues: {
      type: 'array',
      items: {
        type: 'object',
        required: ['queueId', 'minOffset', 'maxOffset'],
        properties: {
          queueId: { type: 'integer' },
          minOffset: { type: 'integer' },
          maxOffset: { type: 'integer' },
        },
      },
    },
  },
} as const;

const GroupStats = {
  $id: 'GroupStats',
  type: 'object',
  required: [
    'backlog',
    'inflight',
    'oldestUnackedAgeMs',
    'deliveredRatePerSecond',
    'ackedRatePerSecond',
    'retries',
    'deadLetters',
  ],
  properties: {
    backlog: { type: 'integer' },
    inflight: { type: 'integer' },
    oldestUnackedAgeMs: { type: 'integer' },
    deliveredRatePerSecond: { type: 'number' },
    ackedRatePerSecond: { type: 'number' },
    retries: { type: 'integer' },
    deadLetters: {
      type: 'integer',
      description:
        "the group's dead letters not re-sent, of all its topics (one dead-letter queue a group)",
    },
  },
} as const;

export const MESSAGE_COMPONENTS = [
  PublishMessage,
  PublishResult,
  ReceivedMessage,
  MessageView,
  DeadLetter,
  TraceEvent,
  TopicStats,
  GroupStats,
];

/** What every receive (plain and streaming) may say: tag filter, invisibility, consumer. */
const receiveOptions = {
  tags: {
    type: 'string',
    pattern: TAG_FILTER_PATTERN,
    default: '*',
    description: '`*` or `A||B`',
  },
  invisibleSeconds: {
    type: 'integer',
    minimum: 1,
    maximum: 43200,
    description: "default: the group's invisibleSeconds",
  },
  consumerId: shortString('required by BROADCASTING groups: each consumer gets every message'),
} as const;

export const messageBodies = {
  publish: {
    type: 'object',
    required: ['messages'],
    properties: {
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_BATCH_MESSAGES,
        items: { $ref: 'PublishMessage#' },
      },
    },
  },
  receive: {
    type: 'object',
    properties: {
      maxMessages: { type: 'integer', minimum: 1, maximum: 32, default: 16 },
      waitSeconds: {
        type: 'integer',
        minimum: 0,
        maximum: 30,
        default: 0,
        description: 'long poll: answer as soon as a message arrives, or empty after this',
      },
      ...receiveOptions,
    },
  },
  receiveStream: {
    type: 'object',
    properties: {
      maxOutstanding: {
        type: 'integer',
        minimum: 1,
        maximum: 1000,
        default: 256,
        description: 'flow control: messages delivered on the stream and not yet acked, at most',
      },
      durationSeconds: {
        type: 'integer',
        minimum: 1,
        maximum: 300,
        default: 60,
        description: 'the stream ends after this (open a new one to go on)',
      },
      ...receiveOptions,
    },
  },
  ack: {
    type: 'object',
    required: ['receiptHandles'],
    properties: {
      receiptHandles: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_ACK_HANDLES,
        // no length limit: an over-long handle is malformed, its own InvalidReceiptHandle result
        items: { type: 'string', minLength: 1 },
      },
    },
  },
  visibility: {
    type: 'object',
    required: ['receiptHandle', 'invisibleSeconds'],
    properties: {
      receiptHandle: { type: 'string', minLength: 1 },
      invisibleSeconds: {
        type: 'integer',
        minimum: 0,
        maximum: 43200,
        description: '0 releases the message now',
      },
    },
  },
  reset: {
    type: 'object',
    required: ['to'],
    properties: {
      to: {
        oneOf: [
          { type: 'string', enum: ['earliest', 'latest'] },
          // up to the last time a Date holds
          { ...epochMs, minimum: 0, maximum: 8_640_000_000_000_000 },
        ],
      },
    },
  },
  resend: {
    type: 'object',
    required: ['messageIds'],
    properties: {
      messageIds: {
        type: 'array',
        minItems: 1,
        maxItems: 100,
        items: { type: 'string', minLength: 1, maxLength: 256 },
      },
    },
  },
} as const;

/** A page size query parameter. */
const pageLimit = { type: 'integer', minimum: 1, maximum: 100, description: '1..100, default 32' };

/** A page cursor's length at most: a query by time's holds each queue's next offset (64 queues of
 *  16-digit offsets: about 1,900 characters), and a cluster's names its broker around it. */
const CURSOR_MAX_CHARS = 4096;

export const messageQueries = {
  list: {
    type: 'object',
    properties: {
      key: { type: 'string', minLength: 1, maxLength: 128, description: 'messages with this key' },
      from: epochMsQuery('store time range start (epoch ms), with `to`'),
      to: epochMsQuery('store time range end (epoch ms, default now)'),
      limit: pageLimit,
      cursor: {
        type: 'string',
        maxLength: CURSOR_MAX_CHARS,
        description: 'nextCursor of the previous page',
      },
    },
  },
  page: {
    type: 'object',
    properties: {
      limit: pageLimit,
      cursor: { type: 'string', maxLength: CURSOR_MAX_CHARS },
    },
  },
} as const;
