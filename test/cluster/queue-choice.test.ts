// The gateway's queue choice in a cluster: keys pick their queue by the broker's own hash,
// unkeyed messages go round robin over the queues of up brokers, and only NORMAL and DELAY
// messages leave a queue whose broker is down.
import t from 'tap';
import { chooseQueues } from '../../src/cluster/queue-choice.js';
import { shareOut } from '../../src/cluster/routing-broker-client.js';
import { shardingHash } from '../../src/protocol/index.js';

const placement = [1, 2, 3, 1, 2, 3];
const up =
  (...ids: number[]) =>
  (id: number) =>
    ids.includes(id);

t.test('keys pick their queue; the rest share one round-robin queue', async (t) => {
  const topic = { messageType: 'NORMAL' as const, queueCount: 6 };
  const choices = chooseQueues(
    topic,
    placement,
    [{ shardingKey: 'k' }, { dedupId: 'd' }, {}, {}],
    up(1, 2, 3),
    7,
  );
  t.same(choices, [
    { queueId: shardingHash('k') % 6 },
    { queueId: shardingHash('d') % 6 },
    { queueId: 1 },
    { queueId: 1 },
  ]);
  t.same(chooseQueues(topic, placement, [{}], up(1, 2, 3), 8), [{ queueId: 2 }], 'next turn');
});

t.test('a down broker: NORMAL fails over, FIFO and TRANSACTION wait', async (t) => {
  const key = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].find((k) => placement[shardingHash(k) % 6] === 2);
  if (key === undefined) throw new Error('no key on broker 2');
  for (const messageType of ['NORMAL', 'DELAY'] as const) {
    const [choice] = chooseQueues(
      { messageType, queueCount: 6 },
      placement,
      [{ shardingKey: key }],
      up(1, 3),
      0,
    );
    t.ok('queueId' in choice && placement[choice.queueId] !== 2, `${messageType} moves`);
  }
  for (const messageType of ['FIFO', 'TRANSACTION'] as const) {
    t.same(
      chooseQueues({ messageType, queueCount: 6 }, placement, [{ shardingKey: key }], up(1, 3), 0),
      [{ down: shardingHash(key) % 6 }],
      `${messageType} waits`,
    );
  }
  t.same(
    chooseQueues({ messageType: 'FIFO', queueCount: 6 }, placement, [{}], up(2, 3), 0),
    [{ down: 0 }],
    'FIFO without a key is queue 0',
  );
  t.same(
    chooseQueues({ messageType: 'NORMAL', queueCount: 6 }, placement, [{}], up(), 0),
    [{ down: -1 }],
    'no broker up',
  );
});

t.test(
  'check-back shares: maxMessages split over the brokers, the remainder turning',
  async (t) => {
    t.same(
      [...shareOut(8, [1, 2, 3], 0)],
      [
        [1, 3],
        [2, 3],
        [3, 2],
      ],
    );
    t.same(
      [...shareOut(8, [1, 2, 3], 1)],
      [
        [2, 3],
        [3, 3],
        [1, 2],
      ],
    );
    t.same([...shareOut(1, [1, 2, 3], 0)], [[1, 1]], 'brokers with no share are not asked');
    t.same([...shareOut(1, [1, 2, 3], 2)], [[3, 1]], 'the next turn asks the next broker');
    const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    for (const max of [1, 5, 32, 100]) t.equal(sum(shareOut(max, [4, 5, 6, 7], 3)), max);
  },
);

t.test('a redirect (where a repeat went) wins while its broker is up', async (t) => {
  const topic = { messageType: 'NORMAL' as const, queueCount: 6 };
  const keyed = shardingHash('d') % 6;
  const elsewhere = (keyed + 1) % 6;
  const choose = (isUp: (id: number) => boolean) =>
    chooseQueues(topic, placement, [{ dedupId: 'd' }], isUp, 0, [elsewhere]);
  t.same(choose(up(1, 2, 3)), [{ queueId: elsewhere }], 'sent where the first went');
  const downIds = [1, 2, 3].filter((id) => id !== placement[elsewhere]);
  t.same(choose(up(...downIds)), [{ queueId: keyed }], 'its broker down: the keyed queue');
});
