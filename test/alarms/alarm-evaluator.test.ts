// The evaluator against a real node (Redis, broker): one lease holder evaluates, a restarted
// evaluator does not fire again, a re-enqueued notification is the same job.
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { AlarmEvaluator, notificationJobId, type NotificationJob } from '../../src/alarms/index.js';
import {
  json,
  provisionTenant,
  startWharf,
  tenantCaller,
  type TestWharf,
} from '../helpers/wharf.js';

/** An evaluator whose brokers answer group stats only once `together` reads are asking at
 *  once: reads one after another never get an answer (each ends at its 2 s read deadline). */
function evaluatorOverSlowStats(t: Test, wharf: TestWharf, together: number) {
  let waiting: (() => void)[] = [];
  const brokers = new Proxy(wharf.brokers, {
    get(target, prop, receiver) {
      if (prop !== 'groupStats') return Reflect.get(target, prop, receiver) as unknown;
      return async (...args: Parameters<typeof target.groupStats>) => {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === together) {
            for (const release of waiting) release();
            waiting = [];
          }
        });
        return target.groupStats(...args);
      };
    },
  });
  const sent: NotificationJob[] = [];
  const evaluator = new AlarmEvaluator({
    meta: wharf.meta,
    brokers,
    notifications: { enqueue: async (job) => void sent.push(job) },
    logger: pino({ level: 'silent' }),
    leaseTtlMs: 60_000,
    readTimeoutMs: 2000,
  });
  t.teardown(() => evaluator.close());
  return { evaluator, sent };
}

t.test('one lease holder; a restart neither fires twice nor forgets', async (t) => {
  const wharf = await startWharf(t);
  const tenant = await provisionTenant(wharf);
  const call = tenantCaller(wharf, tenant);
  await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
  await call('PUT', '/groups/billing', {});
  await call('PUT', '/alarms/behind', {
    metric: 'backlog',
    topic: 'orders',
    group: 'billing',
    threshold: 0,
    forSeconds: 60,
    webhookUrl: 'https://hooks.example.com/x',
  });
  await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }, { body: 'b' }] });

  const sent: NotificationJob[] = [];
  const make = () =>
    new AlarmEvaluator({
      meta: wharf.meta,
      brokers: wharf.brokers,
      notifications: { enqueue: async (job) => void sent.push(job) },
      logger: pino({ level: 'silent' }),
      leaseTtlMs: 60_000,
    });
  const first = make();
  const second = make();
  const now = Date.now();
  t.equal(await first.tick(now), 1, 'the lease holder evaluates');
  t.equal(await second.tick(now), 0, 'the other node does not');
  t.equal(sent.length, 0, 'pending: the condition has not held 60 s');
  t.equal(await first.tick(now + 61_000), 1);
  t.equal(sent.length, 1, 'fired');
  t.match(JSON.parse(sent[0].body), { state: 'firing', value: 2, notification: 1 });

  // the holder stops (gives the lease back); a new evaluator reads the stored state
  await first.close();
  const restarted = make();
  t.equal(await restarted.tick(now + 70_000), 1, 'the new holder evaluates');
  t.equal(await restarted.tick(now + 80_000), 1);
  t.equal(sent.length, 1, 'a restart does not fire again');
  const history = await wharf.meta.alarmStates.history(
    tenant.tenantId,
    tenant.instanceId,
    'behind',
  );
  t.same(
    history.map((e) => e.type),
    ['fired'],
  );
  await second.close();
  await restarted.close();

  t.equal(
    notificationJobId(sent[0]),
    notificationJobId({ ...sent[0] }),
    'a repeated transition is the same job (BullMQ keeps one)',
  );

  // deleting the alarm drops its state and history
  await call('DELETE', '/alarms/behind');
  t.same(await wharf.meta.alarmStates.history(tenant.tenantId, tenant.instanceId, 'behind'), []);
  t.equal((await wharf.meta.alarmStates.states(tenant.tenantId, tenant.instanceId)).size, 0);

  // a deleted instance leaves the walk
  await call('DELETE', '');
  const third = make();
  await third.tick(now + 90_000);
  t.same(await wharf.meta.alarmStates.instances(), []);
  await third.close();
});

t.test(
  'the rules of an instance are read together: stats slow to answer hold the round once',
  async (t) => {
    const wharf = await startWharf(t);
    const tenant = await provisionTenant(wharf);
    const call = tenantCaller(wharf, tenant);
    await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
    const rules = ['a', 'b', 'c', 'd'];
    for (const id of rules) {
      await call('PUT', `/groups/${id}`, {});
      await call('PUT', `/alarms/${id}`, {
        metric: 'backlog',
        topic: 'orders',
        group: id,
        threshold: 0,
        forSeconds: 0,
        webhookUrl: 'https://hooks.example.com/x',
      });
    }
    await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }] });
    // the brokers answer the stats only once all four rules are asking (one at a time, none would)
    const { evaluator, sent } = evaluatorOverSlowStats(t, wharf, rules.length);
    t.equal(await evaluator.tick(Date.now()), rules.length);
    t.same(sent.map((job) => job.alarmId).sort(), rules, 'every rule read its backlog and fired');
  },
);

t.test(
  'a round in flight when its alarm is deleted writes no state back; one created again fires',
  async (t) => {
    const wharf = await startWharf(t);
    const tenant = await provisionTenant(wharf);
    const call = tenantCaller(wharf, tenant);
    await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
    await call('PUT', '/groups/billing', {});
    const spec = {
      metric: 'backlog',
      topic: 'orders',
      group: 'billing',
      threshold: 0,
      forSeconds: 0,
      webhookUrl: 'https://hooks.example.com/x',
    };
    t.equal((await call('PUT', '/alarms/behind', spec)).status, 201);
    await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }] });
    // the round reads the backlog while the alarm is deleted (and, the second time, created again)
    let change: () => Promise<void> = async () => undefined;
    const brokers = new Proxy(wharf.brokers, {
      get(target, prop, receiver) {
        if (prop !== 'groupStats') return Reflect.get(target, prop, receiver) as unknown;
        return async (...args: Parameters<typeof target.groupStats>) => {
          await change();
          return target.groupStats(...args);
        };
      },
    });
    const sent: NotificationJob[] = [];
    const evaluator = new AlarmEvaluator({
      meta: wharf.meta,
      brokers,
      notifications: { enqueue: async (job) => void sent.push(job) },
      logger: pino({ level: 'silent' }),
      leaseTtlMs: 60_000,
    });
    t.teardown(() => evaluator.close());
    const { tenantId, instanceId } = tenant;
    const states = wharf.meta.keys.alarmStates(tenantId, instanceId);

    change = async () => {
      change = async () => undefined;
      t.equal((await call('DELETE', '/alarms/behind')).status, 204, 'deleted mid-round');
    };
    await evaluator.tick(Date.now());
    t.equal(await wharf.meta.redis.hexists(states, 'behind'), 0, 'no state came back');
    t.same(await wharf.meta.alarmStates.history(tenantId, instanceId, 'behind'), [], 'no history');

    const again = await call('PUT', '/alarms/behind-2', spec);
    t.equal(again.status, 201);
    const againCreatedAt = (await json(again)).createdAt as number;
    change = async () => {
      change = async () => undefined;
      await call('DELETE', '/alarms/behind-2');
      const created = await call('PUT', '/alarms/behind-2', spec);
      newCreatedAt = (await json(created)).createdAt as number;
    };
    let newCreatedAt = 0;
    sent.length = 0;
    await evaluator.tick(Date.now());
    t.not(newCreatedAt, againCreatedAt, 'created again: another alarm');
    t.ok(
      sent.some((job) => job.alarmCreatedAt === againCreatedAt),
      'the round fired the alarm it read',
    );
    sent.length = 0;
    // the alarm created again starts from no state: the round's firing was not written to it
    await evaluator.tick(Date.now());
    t.ok(
      sent.some((job) => job.alarmCreatedAt === newCreatedAt),
      'the alarm created again fires its own notification',
    );
    t.same(
      (await wharf.meta.alarmStates.history(tenantId, instanceId, 'behind-2')).map((e) => e.type),
      ['fired'],
      'its history is its own: one fired',
    );
  },
);

t.test(
  'instances are evaluated side by side: stats slow to answer hold the round once, not once an instance',
  async (t) => {
    const wharf = await startWharf(t);
    const instances = 3;
    for (let i = 0; i < instances; i++) {
      const call = tenantCaller(wharf, await provisionTenant(wharf));
      await call('PUT', '/topics/orders', { messageType: 'NORMAL' });
      await call('PUT', '/groups/g', {});
      await call('PUT', '/alarms/behind', {
        metric: 'backlog',
        topic: 'orders',
        group: 'g',
        threshold: 0,
        forSeconds: 0,
        webhookUrl: 'https://hooks.example.com/x',
      });
      await call('POST', '/topics/orders/messages', { messages: [{ body: 'a' }] });
    }
    // the brokers answer the stats only once every instance's rule is asking
    const { evaluator, sent } = evaluatorOverSlowStats(t, wharf, instances);
    t.equal(await evaluator.tick(Date.now()), instances);
    t.equal(sent.length, instances, "every instance's rule read its backlog and fired");
  },
);
