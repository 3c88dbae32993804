// The gateway's routing over brokers, with stand-in brokers: a 503 for a broker the gateway could
// not reach names it, whatever the transport said (API.md: "the message names the broker"), and
// new queues go only to brokers the gateway reaches.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import {
  RoutingBrokerClient,
  type BrokerAddress,
} from '../../src/cluster/routing-broker-client.js';
import { unavailable } from '../../src/cluster/rpc-channel.js';
import { WharfError } from '../../src/errors.js';
import { waitFor } from '../helpers/wait-for.js';
import type { BrokerClient } from '../../src/cluster/index.js';
import type {
  CheckedMessage,
  GroupDescriptor,
  MessageView,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
} from '../../src/model/index.js';

const topic: TopicDescriptor = {
  tenantId: 't1',
  instanceId: 'i1',
  topic: 'orders',
  messageType: 'NORMAL',
  queueCount: 2,
  retentionHours: 72,
  dedupWindowMs: 600_000,
  createdAt: 1,
};

const clustering = {
  tenantId: 't1',
  instanceId: 'i1',
  group: 'g',
  deliveryMode: 'CLUSTERING',
  createdAt: 1,
} as unknown as GroupDescriptor;

t.test('a broker the connection to was lost is named in the 503', async (t) => {
  const brokers = new Map<number, BrokerAddress>([
    [1, { brokerId: 1, address: '10.0.0.1:7070', live: true }],
    [2, { brokerId: 2, address: '10.0.0.2:7070', live: true }],
  ]);
  const lost = (why: string) =>
    ({
      health: () => Promise.resolve({ ready: true }),
      topicStats: () => Promise.reject(unavailable(why, 1000)),
      close: () => Promise.resolve(),
    }) as unknown as BrokerClient;
  const why = new Map([
    [1, 'connection to broker lost'],
    [2, 'broker unreachable'],
  ]);
  const routing = new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: { place: () => Promise.resolve([2, 1]), drop: () => Promise.resolve() },
    connect: (_address, brokerId) => lost(why.get(brokerId) ?? ''),
    macKey: randomBytes(32),
  });
  t.teardown(() => routing.close());
  await t.rejects(routing.topicStats(topic), {
    code: 'Unavailable',
    message: /^broker 1 \(10\.0\.0\.1:7070\) is unavailable: connection to broker lost$/,
  });
});

t.test('new queues go only to live brokers that answer this gateway', async (t) => {
  // broker 2 holds its lease, but its advertised address leads nowhere: it never answers
  const brokers = new Map<number, BrokerAddress>([
    [1, { brokerId: 1, address: '10.0.0.1:7070', live: true }],
    [2, { brokerId: 2, address: '10.0.0.2:7070', live: true }],
    [3, { brokerId: 3, address: '10.0.0.3:7070', live: true }],
  ]);
  const answers = (brokerId: number) =>
    ({
      health: () =>
        brokerId === 2
          ? new Promise(() => undefined)
          : brokerId === 3
            ? Promise.reject(unavailable('broker unreachable', 1000))
            : Promise.resolve({ ready: true }),
      close: () => Promise.resolve(),
    }) as unknown as BrokerClient;
  const offered: number[][] = [];
  const routing = new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: {
      place: (_topic, live) => {
        offered.push([...live]);
        // as meta's QueuePlacements: an unplaced queue with no broker offered is refused
        if (live.length === 0) {
          return Promise.reject(
            new WharfError('Unavailable', 'no live broker to place the queues on'),
          );
        }
        return Promise.resolve(Array.from({ length: 2 }, () => live[0]));
      },
      drop: () => Promise.resolve(),
    },
    connect: (_address, brokerId) => answers(brokerId),
    macKey: randomBytes(32),
  });
  t.teardown(() => routing.close());
  await routing.placeTopic?.(topic);
  t.same(offered, [[], [1]], 'read first; then placed past the silent and the unreachable broker');
});

t.test('a broker that does not answer is listed unreachable, not waited for', async (t) => {
  // broker 2 holds its lease but is cut off (a partition, a stopped process): its health call
  // never answers; a readiness probe's default timeout is 1 s
  const brokers = new Map<number, BrokerAddress>([
    [1, { brokerId: 1, address: '10.0.0.1:7070', live: true }],
    [2, { brokerId: 2, address: '10.0.0.2:7070', live: true }],
  ]);
  const routing = new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: { place: () => Promise.resolve([1, 1]), drop: () => Promise.resolve() },
    connect: (_address, brokerId) =>
      ({
        health: () =>
          brokerId === 2 ? new Promise(() => undefined) : Promise.resolve({ ready: true }),
        close: () => Promise.resolve(),
      }) as unknown as BrokerClient,
    macKey: randomBytes(32),
  });
  t.teardown(() => routing.close());
  // it answers at all (before: not until the call's own deadline, here never)
  t.same(
    await routing.health(),
    {
      ready: true,
      brokers: [
        { id: 1, address: '10.0.0.1:7070', state: 'ready' },
        { id: 2, address: '10.0.0.2:7070', state: 'unreachable' },
      ],
    },
    'ready while one broker is, the silent one listed unreachable',
  );
});

t.test('a give-back goes to its broker even once the registry says it is down', async (t) => {
  // broker 1 gave its lease up as it stops: down in the registry, still serving give-backs
  const brokers = new Map<number, BrokerAddress>([
    [1, { brokerId: 1, address: '10.0.0.1:7070', live: false }],
    [2, { brokerId: 2, address: '10.0.0.2:7070', live: true }],
  ]);
  const given: string[][] = [];
  const stopping = {
    health: () => Promise.resolve({ ready: true }),
    returnMessages: (_t: unknown, _g: unknown, handles: string[]) => {
      given.push(handles);
      return Promise.resolve();
    },
    groupStats: () => Promise.reject(new Error('not called: the broker is down')),
    close: () => Promise.resolve(),
  } as unknown as BrokerClient;
  const routing = new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: { place: () => Promise.resolve([1, 2]), drop: () => Promise.resolve() },
    connect: () => stopping,
    macKey: randomBytes(32),
  });
  t.teardown(() => routing.close());
  const bytes = Buffer.alloc(32, 7);
  bytes[0] = 2; // receipt handle version
  bytes.writeUInt16BE(1, 1); // broker 1
  const handle = bytes.toString('base64url');
  await routing.returnMessages(topic, clustering, [handle]);
  t.same(given, [[handle]], 'given back to broker 1');
});

/** Stand-in brokers 1..n, live and ready, holding the topic's queues one each. */
function standIns(n: number, client: (brokerId: number) => Partial<BrokerClient>) {
  const brokers = new Map<number, BrokerAddress>(
    Array.from({ length: n }, (_, i): [number, BrokerAddress] => [
      i + 1,
      { brokerId: i + 1, address: `10.0.0.${i + 1}:7070`, live: true },
    ]),
  );
  return new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: {
      place: () => Promise.resolve(Array.from({ length: n }, (_, i) => i + 1)),
      drop: () => Promise.resolve(),
    },
    connect: (_address, brokerId) =>
      ({
        health: () => Promise.resolve({ ready: true }),
        close: () => Promise.resolve(),
        ...client(brokerId),
      }) as unknown as BrokerClient,
    macKey: randomBytes(32),
  });
}

t.test(
  'a receive takes a backlog broker after broker, popping no more than it answers',
  async (t) => {
    const left = new Map([
      [1, 20],
      [2, 20],
      [3, 20],
    ]);
    let given = 0;
    const routing = standIns(3, (brokerId) => ({
      receive: (_t: unknown, _g: unknown, request: ReceiveRequest) => {
        const n = Math.min(request.maxMessages, left.get(brokerId) ?? 0);
        left.set(brokerId, (left.get(brokerId) ?? 0) - n);
        return Promise.resolve(
          Array.from({ length: n }, () => ({ body: Buffer.alloc(10) }) as ReceivedMessage),
        );
      },
      returnMessages: (_t: unknown, _g: unknown, handles: string[]) => {
        given += handles.length;
        return Promise.resolve();
      },
    }));
    t.teardown(() => routing.close());
    const three = { ...topic, queueCount: 3 };
    const answer = await routing.receive(three, clustering, {
      maxMessages: 32,
      waitMs: 20_000,
      tags: '*',
    });
    t.equal(answer.length, 32, 'one answer filled from two brokers');
    t.equal(60 - [...left.values()].reduce((a, b) => a + b, 0), 32, 'exactly 32 popped');
    t.equal(given, 0, 'nothing given back');
  },
);

t.test('a waiting check keeps the offers of the brokers it cancelled', async (t) => {
  // both halves come due at once: broker 1 answers first, broker 2 offers as it is cancelled
  const routing = standIns(2, (brokerId) => ({
    checkTransactions: (_t: unknown, request: { waitMs: number }, signal?: AbortSignal) => {
      if (request.waitMs === 0) return Promise.resolve([]);
      const offer = [{ transactionId: `half-${brokerId}` } as CheckedMessage];
      if (brokerId === 1) return new Promise((resolve) => setTimeout(() => resolve(offer), 20));
      return new Promise((resolve) =>
        signal?.addEventListener('abort', () => setTimeout(() => resolve(offer), 20)),
      );
    },
  }));
  t.teardown(() => routing.close());
  const txn = { ...topic, messageType: 'TRANSACTION' as const };
  const offers = await routing.checkTransactions(txn, { maxMessages: 16, waitMs: 20_000 });
  t.same(offers.map((o) => o.transactionId).sort(), ['half-1', 'half-2'], 'no offer lost');
});

t.test('a receive does not ask another broker with less room than the largest body', async (t) => {
  const mib3 = 3 * 1024 * 1024;
  let asked = 0;
  const routing = standIns(2, () => {
    let left = 5;
    return {
      receive: (_t: unknown, _g: unknown, request: ReceiveRequest) => {
        asked++;
        // as a broker does: bodies up to the budget, at least one
        const fit = Math.max(1, Math.floor((request.maxBodyBytes ?? Infinity) / mib3));
        const n = Math.min(left, request.maxMessages, fit);
        left -= n;
        return Promise.resolve(
          Array.from({ length: n }, () => ({ body: Buffer.alloc(mib3) }) as ReceivedMessage),
        );
      },
    };
  });
  t.teardown(() => routing.close());
  const answer = await routing.receive({ ...topic, queueCount: 2 }, clustering, {
    maxMessages: 32,
    waitMs: 0,
    tags: '*',
    maxBodyBytes: 16 * 1024 * 1024,
  });
  t.equal(answer.length, 5, 'five bodies of 3 MiB from the first broker');
  t.equal(asked, 1, 'the other broker not asked with 1 MiB of room');
});

t.test(
  'a receive with little room left still asks the next broker when it has nothing',
  async (t) => {
    const routing = standIns(2, (brokerId) => ({
      receive: () =>
        Promise.resolve(
          brokerId === 1 ? [] : [{ body: Buffer.alloc(100) } as unknown as ReceivedMessage],
        ),
    }));
    t.teardown(() => routing.close());
    const answer = await routing.receive({ ...topic, queueCount: 2 }, clustering, {
      maxMessages: 32,
      waitMs: 0,
      tags: '*',
      maxBodyBytes: 1024 * 1024, // less than the largest body: the gateway's budget nearly used
    });
    t.equal(answer.length, 1, "broker 2's message, after broker 1 had none");
  },
);

t.test('a query by key over brokers answers the newest `limit`, newest first', async (t) => {
  // broker 1 holds the key's older messages (times 1..40), broker 2 the newer (41..80); each
  // answers its newest `limit`, newest first, as one broker does
  const routing = standIns(2, (brokerId) => ({
    queryByKey: (_t: unknown, _k: unknown, limit: number) =>
      Promise.resolve(
        Array.from(
          { length: limit },
          (_, i) => ({ publishTime: brokerId * 40 - i }) as unknown as MessageView,
        ),
      ),
  }));
  t.teardown(() => routing.close());
  const found = await routing.queryByKey({ ...topic, queueCount: 2 }, 'k', 32);
  t.same(
    found.map((m) => m.publishTime),
    Array.from({ length: 32 }, (_, i) => 80 - i),
  );
});

t.test('dead letters over brokers come in pages of `limit` while more exist', async (t) => {
  // 18, 11 and 11 dead letters on three brokers, each paging its own (its cursor an offset)
  const held = new Map([
    [1, 18],
    [2, 11],
    [3, 11],
  ]);
  const routing = standIns(3, (brokerId) => ({
    deadLetters: (_g: unknown, limit: number, cursor?: string) => {
      const all = Array.from({ length: held.get(brokerId) ?? 0 }, (_, i) => `${brokerId}.${i}`);
      const from = cursor === undefined ? 0 : Number(cursor);
      const messages = all.slice(from, from + limit).map((messageId) => ({ messageId }));
      return Promise.resolve(
        from + limit < all.length ? { messages, nextCursor: String(from + limit) } : { messages },
      ) as ReturnType<BrokerClient['deadLetters']>;
    },
  }));
  t.teardown(() => routing.close());
  const whole = await routing.deadLetters(clustering, 100);
  t.equal(whole.messages.length, 40, 'all 40 in one page of 100');
  t.equal(whole.nextCursor, undefined, 'and no cursor: nothing more');
  const sizes: number[] = [];
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await routing.deadLetters(clustering, 15, cursor);
    sizes.push(page.messages.length);
    seen.push(...page.messages.map((m) => m.messageId));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  t.same(sizes, [15, 15, 10], 'full pages but the last');
  t.equal(new Set(seen).size, 40, 'each once');
});

t.test('a group’s dead letters count those on every broker, on each of its topics', async (t) => {
  // the topic's one queue is on broker 1; the group's dead letters of its other topics lie on
  // brokers 2 and 3, and broker 3 does not answer
  const brokers = new Map<number, BrokerAddress>(
    [1, 2, 3].map((id): [number, BrokerAddress] => [
      id,
      { brokerId: id, address: `10.0.0.${id}:7070`, live: true },
    ]),
  );
  const stats = (brokerId: number) => ({
    backlog: brokerId === 1 ? 5 : 0,
    inflight: 0,
    oldestUnackedAgeMs: 0,
    deliveredRatePerSecond: 0,
    ackedRatePerSecond: 0,
    retries: 0,
    deadLetters: brokerId,
  });
  const routing = new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: { place: () => Promise.resolve([1]), drop: () => Promise.resolve() },
    connect: (_address, brokerId) =>
      ({
        health: () => Promise.resolve({ ready: true }),
        close: () => Promise.resolve(),
        groupStats: () =>
          brokerId === 3
            ? Promise.reject(unavailable('broker unreachable', 1000))
            : Promise.resolve(stats(brokerId)),
      }) as unknown as BrokerClient,
    macKey: randomBytes(32),
  });
  t.teardown(() => routing.close());
  t.match(await routing.groupStats({ ...topic, queueCount: 1 }, clustering), {
    backlog: 5,
    deadLetters: 3,
  });
});

t.test('a suspect is asked for its health before publishes go to it again', async (t) => {
  // broker 2 is cut off (a partition): its calls fail only at their deadline, here 200 ms
  const brokers = new Map<number, BrokerAddress>([
    [1, { brokerId: 1, address: '10.0.0.1:7070', live: true }],
    [2, { brokerId: 2, address: '10.0.0.2:7070', live: true }],
  ]);
  let cutOff = true;
  const publishesTo = new Map<number, number>([
    [1, 0],
    [2, 0],
  ]);
  const missed = () =>
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(unavailable('broker call publish missed its 200 ms deadline', 1000)),
        200,
      ),
    );
  const routing = new RoutingBrokerClient({
    directory: { brokers, onChange: () => undefined },
    placements: { place: () => Promise.resolve([1, 2]), drop: () => Promise.resolve() },
    connect: (_address, brokerId) =>
      ({
        health: () => (brokerId === 2 && cutOff ? missed() : Promise.resolve({ ready: true })),
        publish: (_topic: TopicDescriptor, messages: { queueId?: number }[]) => {
          publishesTo.set(brokerId, (publishesTo.get(brokerId) ?? 0) + 1);
          if (brokerId === 2 && cutOff) return missed();
          return Promise.resolve(
            messages.map((m, i) => ({
              messageId: `${brokerId}.${i}`,
              queueId: m.queueId ?? 0,
              bodyMd5: '',
            })),
          );
        },
        close: () => Promise.resolve(),
      }) as unknown as BrokerClient,
    macKey: randomBytes(32),
    suspectMs: 50,
  });
  t.teardown(() => routing.close());
  const publishOne = () =>
    routing.publish(topic, [{ body: Buffer.from('m'), bodyEncoding: 'utf8', properties: {} }]);
  // one publish chooses broker 2's queue, waits out its deadline and fails over
  while (publishesTo.get(2) === 0) await publishOne();
  // long past the suspicion: publishes go on, none of them to broker 2 while it does not answer
  const until = Date.now() + 600;
  const queues = new Set<number>();
  while (Date.now() < until) queues.add((await publishOne())[0].queueId);
  t.same([...queues], [0], 'all on broker 1’s queue');
  t.equal(publishesTo.get(2), 1, 'no publish sent to the broker cut off since the first');
  cutOff = false;
  await waitFor('broker 2 takes publishes again', async () => {
    const [result] = await publishOne();
    return result.queueId === 1;
  });
});
