// Schemas of the operator plane (tenants, access keys) and of the tenant plane's resources
// (instances, topics, groups, tokens). Components are registered by `registerSchemas`.
import type { FastifyInstance } from 'fastify';
import { ACTIONS, DEFAULT_QUOTAS } from '../../meta/index.js';
import { ErrorBody, epochMs, nameSchema } from './common.js';

const Permission = {
  $id: 'Permission',
  type: 'object',
  required: ['instance', 'actions'],
  properties: {
    instance: {
      type: 'string',
      pattern: '^(\\*|MQ_INST_[A-Z2-7]{20})$',
      description: 'an instance id, or * for every instance',
    },
    actions: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: [...ACTIONS] },
    },
  },
} as const;

const permissions = {
  type: 'array',
  maxItems: 64,
  items: { $ref: 'Permission#' },
} as const;

const quotaFields = {
  publishPerSecond: { type: 'integer', minimum: 1, maximum: 10_000_000 },
  consumePerSecond: { type: 'integer', minimum: 1, maximum: 10_000_000 },
  maxTopics: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  maxGroups: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  maxMessageBytes: { type: 'integer', minimum: 1, maximum: 4 * 1024 * 1024 },
} as const;

const Quotas = {
  $id: 'Quotas',
  type: 'object',
  required: Object.keys(quotaFields),
  properties: quotaFields,
} as const;

const QuotasPatch = {
  $id: 'QuotasPatch',
  type: 'object',
  description: `Fields given replace the tenant's; defaults at creation: ${JSON.stringify(DEFAULT_QUOTAS)}`,
  properties: quotaFields,
} as const;

const Tenant = {
  $id: 'Tenant',
  type: 'object',
  required: ['tenantId', 'name', 'status', 'quotas', 'createdAt'],
  properties: {
    tenantId: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: ['active', 'suspended'] },
    quotas: { $ref: 'Quotas#' },
    createdAt: epochMs,
  },
} as const;

const AccessKey = {
  $id: 'AccessKey',
  type: 'object',
  required: ['accessKeyId', 'permissions', 'createdAt'],
  properties: {
    accessKeyId: { type: 'string' },
    description: { type: 'string' },
    permissions,
    createdAt: epochMs,
  },
} as const;

const NewAccessKey = {
  $id: 'NewAccessKey',
  type: 'object',
  required: ['accessKeyId', 'accessKeySecret', 'permissions', 'createdAt'],
  properties: {
    accessKeyId: { type: 'string' },
    accessKeySecret: { type: 'string', description: 'shown only in this answer' },
    description: { type: 'string' },
    permissions,
    createdAt: epochMs,
  },
} as const;

const Instance = {
  $id: 'Instance',
  type: 'object',
  required: ['instanceId', 'name', 'createdAt'],
  properties: {
    instanceId: { type: 'string', description: 'also the MQ HTTP SDK instance id' },
    name: { type: 'string' },
    createdAt: epochMs,
  },
} as const;

const MESSAGE_TYPES = ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION'];

const Topic = {
  $id: 'Topic',
  type: 'object',
  required: [
    'topic',
    'instanceId',
    'messageType',
    'queueCount',
    'retentionHours',
    'dedupWindowSeconds',
    'createdAt',
  ],
  properties: {
    topic: { type: 'string' },
    instanceId: { type: 'string' },
    messageType: { type: 'string', enum: MESSAGE_TYPES },
    queueCount: { type: 'integer' },
    retentionHours: { type: 'integer' },
    dedupWindowSeconds: { type: 'integer' },
    createdAt: epochMs,
  },
} as const;

const RetryPolicy = {
  $id: 'RetryPolicy',
  description:
    'Back-off before each redelivery: a list (the last entry repeats) or an exponential rule. ' +
    'Absent: RocketMQ levels 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h.',
  oneOf: [
    {
      type: 'object',
      required: ['backoffSeconds'],
      properties: {
        backoffSeconds: {
          type: 'array',
          minItems: 1,
          maxItems: 32,
          items: { type: 'integer', minimum: 0, maximum: 86400 },
        },
      },
    },
    {
      type: 'object',
      required: ['exponential'],
      properties: {
        exponential: {
          type: 'object',
          required: ['initialSeconds', 'multiplier', 'maxSeconds'],
          properties: {
            initialSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
            multiplier: { type: 'number', minimum: 1, maximum: 10 },
            maxSeconds: {
              type: 'integer',
              minimum: 1,
              maximum: 86400,
              description: 'at least initialSeconds',
            },
          },
        },
      },
    },
  ],
} as const;

const Group = {
  $id: 'Group',
  type: 'object',
  required: [
    'group',
    'instanceId',
    'deliveryMode',
    'maxDeliveryAttempts',
    'invisibleSeconds',
    'createdAt',
  ],
  properties: {
    group: { type: 'string' },
    instanceId: { type: 'string' },
    deliveryMode: { type: 'string', enum: ['CLUSTERING', 'BROADCASTING'] },
    maxDeliveryAttempts: { type: 'integer' },
    invisibleSeconds: { type: 'integer' },
    retryPolicy: { $ref: 'RetryPolicy#' },
    createdAt: { ...epochMs, description: 'the group reads each topic from this time on' },
  },
} as const;

export const bodies = {
  createTenant: {
    type: 'object',
    required: ['name'],
    properties: { name: nameSchema('tenant name'), quotas: { $ref: 'QuotasPatch#' } },
  },
  patchTenant: {
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['active', 'suspended'] },
      quotas: { $ref: 'QuotasPatch#' },
    },
  },
  createAccessKey: {
    type: 'object',
    properties: {
      description: { type: 'string', maxLength: 256 },
      permissions: { ...permissions, minItems: 1 },
    },
  },
  createInstance: {
    type: 'object',
    required: ['name'],
    properties: { name: nameSchema('instance name') },
  },
  putTopic: {
    type: 'object',
    required: ['messageType'],
    properties: {
      messageType: {
        type: 'string',
        enum: MESSAGE_TYPES,
        description: 'fixed at creation: another value answers 409 MessageTypeMismatch',
      },
      queueCount: {
        type: 'integer',
        minimum: 1,
        maximum: 64,
        default: 8,
        description:
          "may grow on a later PUT, never shrink (409 Conflict); a FIFO topic's is fixed at " +
          'creation (409 Conflict: a sharding key moved to a new queue would overtake its unacked messages)',
      },
      retentionHours: {
        type: 'integer',
        minimum: 1,
        maximum: 8760,
        default: 72,
        description:
          "bounds dedupWindowSeconds; messages are kept for the broker's retention " +
          '(WHARF_RETENTION_HOURS) whatever this says: a per-topic retention is not enforced yet',
      },
      dedupWindowSeconds: {
        type: 'integer',
        minimum: 1,
        maximum: 8760 * 3600,
        default: 600,
        description: 'window of publish dedupId, at most the retention',
      },
    },
  },
  putGroup: {
    type: 'object',
    properties: {
      deliveryMode: {
        type: 'string',
        enum: ['CLUSTERING', 'BROADCASTING'],
        default: 'CLUSTERING',
        description: 'fixed at creation: another value answers 409 Conflict',
      },
      maxDeliveryAttempts: { type: 'integer', minimum: 1, maximum: 1000, default: 17 },
      invisibleSeconds: { type: 'integer', minimum: 1, maximum: 43200, default: 300 },
      retryPolicy: { $ref: 'RetryPolicy#' },
    },
  },
  createToken: {
    type: 'object',
    required: ['ttlSeconds'],
    properties: {
      ttlSeconds: { type: 'integer', minimum: 60, maximum: 3600 },
      permissions: {
        ...permissions,
        description: 'narrows the token; never broader than the signing key',
      },
    },
  },
} as const;

export const COMPONENTS = [
  ErrorBody,
  Permission,
  Quotas,
  QuotasPatch,
  Tenant,
  AccessKey,
  NewAccessKey,
  Instance,
  Topic,
  RetryPolicy,
  Group,
];

export function registerSchemas(app: FastifyInstance, extra: readonly object[] = []): void {
  for (const schema of [...COMPONENTS, ...extra]) app.addSchema(schema);
}
