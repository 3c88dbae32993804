// Path parameter schemas of the tenant plane. Instance ids are checked by format in code (a
// malformed id is a 404 like a missing one); topic and group names by schema (a bad name is 400).
import { nameSchema } from '../schemas/common.js';

// no length limit in the schema either: an over-long id is as malformed as any other (404)
export const instanceParam = { type: 'string' } as const;
export const topicParam = nameSchema('topic name');
export const groupParam = nameSchema('group name');

export const instanceParams = {
  type: 'object',
  required: ['instanceId'],
  properties: { instanceId: instanceParam },
} as const;

export const topicParams = {
  type: 'object',
  required: ['instanceId', 'topic'],
  properties: { instanceId: instanceParam, topic: topicParam },
} as const;

export const groupParams = {
  type: 'object',
  required: ['instanceId', 'group'],
  properties: { instanceId: instanceParam, group: groupParam },
} as const;

export const topicGroupParams = {
  type: 'object',
  required: ['instanceId', 'topic', 'group'],
  properties: { instanceId: instanceParam, topic: topicParam, group: groupParam },
} as const;

export interface InstanceParams {
  instanceId: string;
}
export interface TopicParams extends InstanceParams {
  topic: string;
}
export interface GroupParams extends InstanceParams {
  group: string;
}
export interface TopicGroupParams extends TopicParams {
  group: string;
}
