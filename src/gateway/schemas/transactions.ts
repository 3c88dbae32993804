// Schemas of the transaction routes (commit, rollback, check-back) and the CheckedMessage
// component: what a producer is offered for a decision.
import { epochMs } from './common.js';

export const MAX_CHECK_MESSAGES = 32;
export const MAX_CHECK_WAIT_SECONDS = 30;

const nullableString = { type: ['string', 'null'] } as const;

export const CheckedMessage = {
  $id: 'CheckedMessage',
  type: 'object',
  required: [
    'transactionId',
    'messageId',
    'body',
    'bodyEncoding',
    'tag',
    'keys',
    'properties',
    'shardingKey',
    'publishTime',
    'checkCount',
  ],
  properties: {
    transactionId: { type: 'string', description: 'commit or roll back with it' },
    messageId: { type: 'string', description: 'the id the publish answered' },
    body: { type: 'string' },
    bodyEncoding: { type: 'string', enum: ['utf8', 'base64'] },
    tag: nullableString,
    keys: { type: 'array', items: { type: 'string' } },
    properties: { type: 'object', additionalProperties: { type: 'string' } },
    shardingKey: nullableString,
    publishTime: epochMs,
    checkCount: {
      type: 'integer',
      minimum: 1,
      description: 'offers of this message so far, this one included (at most 15)',
    },
  },
} as const;

export const transactionBodies = {
  check: {
    type: 'object',
    properties: {
      maxMessages: { type: 'integer', minimum: 1, maximum: MAX_CHECK_MESSAGES, default: 16 },
      waitSeconds: {
        type: 'integer',
        minimum: 0,
        maximum: MAX_CHECK_WAIT_SECONDS,
        default: 0,
        description: 'long poll: answer as soon as a half message is due, or empty after this',
      },
    },
  },
} as const;
