// Consumer groups. PUT is idempotent: 201 when created, 200 when unchanged or updated; the
// delivery mode is fixed at creation (409 Conflict); `createdAt` is kept across updates since
// the broker starts the group's reading of each topic there. maxGroups is checked atomically.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { DeliveryMode, RetryPolicy } from '../../model/index.js';
import { WharfError } from '../../errors.js';
import type { GroupRecord } from '../../meta/index.js';
import { deleteResource, finishEarlierDelete, type RouteContext } from '../context.js';
import { resolveGroup, resolveInstance } from '../plugins/tenancy.js';
import { bodies } from '../schemas/resources.js';
import { groupParams } from './params.js';
import { instanceResourceRoutes } from './resource-routes.js';

export function groupView(g: GroupRecord) {
  return {
    group: g.group,
    instanceId: g.instanceId,
    deliveryMode: g.deliveryMode,
    maxDeliveryAttempts: g.maxDeliveryAttempts,
    invisibleSeconds: g.invisibleSeconds,
    ...(g.retryPolicy === undefined ? {} : { retryPolicy: g.retryPolicy }),
    createdAt: g.createdAt,
  };
}

interface PutGroupBody {
  deliveryMode: DeliveryMode;
  maxDeliveryAttempts: number;
  invisibleSeconds: number;
  retryPolicy?: RetryPolicy;
}

export function groupRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { meta } = ctx;
  instanceResourceRoutes<'group', PutGroupBody>(app, {
    plural: 'groups',
    nameParam: 'group',
    params: groupParams,
    putBody: bodies.putGroup,
    ref: 'Group#',
    summaries: {
      put: 'Create or update a consumer group (idempotent)',
      list: 'List consumer groups',
      get: 'Get a consumer group',
      delete: 'Delete a consumer group and its progress',
    },
    putAnswers: { 200: 'Unchanged or updated', 201: 'Created' },
    putErrors: [404, 409],

    async put(principal, instanceId, group, body) {
      await resolveInstance(meta, principal, instanceId, 'manage');
      await finishEarlierDelete(ctx, principal.tenantId, instanceId, 'group', group);
      await meta.refuseWhileDropping(principal.tenantId, instanceId, 'group', group);
      const policy = body.retryPolicy;
      if (
        policy !== undefined &&
        'exponential' in policy &&
        policy.exponential.maxSeconds < policy.exponential.initialSeconds
      ) {
        throw new WharfError('InvalidArgument', 'exponential.maxSeconds must be ≥ initialSeconds');
      }
      const { status, record } = await meta.putGroup({
        tenantId: principal.tenantId,
        instanceId,
        group,
        deliveryMode: body.deliveryMode,
        maxDeliveryAttempts: body.maxDeliveryAttempts,
        invisibleSeconds: body.invisibleSeconds,
        ...(policy === undefined ? {} : { retryPolicy: policy }),
        createdAt: Date.now(),
        // kept across updates by put-resource-5.lua; a re-created group gets a new one
        incarnation: randomBytes(8).toString('hex'),
      });
      return { created: status === 'created', answer: groupView(record) };
    },

    async list(principal, instanceId) {
      await resolveInstance(meta, principal, instanceId, 'read');
      return (await meta.groupList(principal.tenantId, instanceId)).map(groupView);
    },

    async get(principal, instanceId, group) {
      return groupView(await resolveGroup(meta, principal, instanceId, group, 'read'));
    },

    async delete(principal, instanceId, group) {
      await resolveInstance(meta, principal, instanceId, 'manage');
      const found = await deleteResource(ctx, principal.tenantId, instanceId, 'group', group);
      if (!found) throw new WharfError('GroupNotFound', `no group ${group}`);
    },
  });
}
