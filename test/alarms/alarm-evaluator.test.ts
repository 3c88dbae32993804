// The evaluator against a real node (Redis, broker): one lease holder evaluates, a restarted
// evaluator does not fire again, a re-enqueued notification is the same job.
import t from 'tap';
import { pino } from 'pino';
import { AlarmEvaluator, notificationJobId, type NotificationJob } from '../../src/alarms/index.js';
import { provisionTenant, startWharf, tenantCaller } from '../helpers/wharf.js';

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
