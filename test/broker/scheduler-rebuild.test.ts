// A wheel rebuild whose last step ran in Redis but answered with an error (a command timeout
// after the script ran) leaves a `ready` mark the periodic check trusts. The broker must rebuild
// again rather than stay not-ready for good, claiming nothing, its delayed messages stranded.
import { Redis } from 'ioredis';
import t from 'tap';
import { WharfError } from '../../src/errors.js';
import { MetaKeys, RedisScheduleWheel } from '../../src/meta/index.js';
import { brokerHarness, groupOf, text, topicOf } from '../helpers/broker.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait-for.js';

/** A wheel whose first finishRebuild runs in Redis, then fails as a timed-out command does. */
class TimingOutOnce extends RedisScheduleWheel {
  failures = 0;

  override async finishRebuild(wheelId: string, scheduledLogOffset: number, loaded: number) {
    const answer = await super.finishRebuild(wheelId, scheduledLogOffset, loaded);
    if (this.failures++ === 0) throw new WharfError('Unavailable', 'Command timed out');
    return answer;
  }
}

t.test('a finishRebuild that ran but failed is followed by another rebuild', async (t) => {
  const server = await startTestRedis(t);
  const redis = new Redis(server.url, { maxRetriesPerRequest: 0 });
  t.teardown(() => redis.quit());
  const wheel = new TimingOutOnce(redis, new MetaKeys('test'), '0');
  const broker = await brokerHarness(t).open({
    scheduleWheel: wheel,
    scheduler: { checkIntervalMs: 50 },
  });
  const scheduler = broker.scheduler!;
  await waitFor('the wheel rebuilt after the failed finish', () => scheduler.rebuilds >= 1);
  t.equal(wheel.failures, 2, 'finishRebuild ran twice: the failure was followed by a rebuild');
  const topic = topicOf({ messageType: 'DELAY' });
  const group = groupOf();
  await broker.publish(topic, [text('later', { deliverAtMs: Date.now() + 200 })]);
  const got: string[] = [];
  await waitFor('the delayed message delivered', async () => {
    const messages = await broker.receive(topic, group, { maxMessages: 1, waitMs: 0, tags: '*' });
    got.push(...messages.map((m) => m.body.toString()));
    return got.length > 0;
  });
  t.same(got, ['later']);
});
