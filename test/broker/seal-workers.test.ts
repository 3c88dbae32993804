// Sealing and opening on worker threads: what the threads seal opens inline under the same key
// and instance (and only there), and what they open is the body or null; batches run
// concurrently across threads; a batch whose thread is killed is done inline and the next batch
// gets a new thread; past the pending bound or after close() batches are done inline; messages
// that cross threads are checked before use.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { SEAL_OVERHEAD_BYTES, openBody, sealAad } from '../../src/broker/body-seal.js';
import { BodyKeys } from '../../src/broker/body-keys.js';
import { DEFAULT_MIN_BATCH_BYTES, SealWorkers, sealInline } from '../../src/broker/seal-workers.js';
import { MessageFlags, type StoredMessage } from '../../src/store/index.js';
import {
  decodeSealAnswer,
  decodeSealAnswers,
  decodeSealRequest,
  packBodies,
  requestsOf,
  sealPacked,
  unpack,
} from '../../src/broker/seal-batch.js';
import { brokerHarness, groupOf, openTestBroker, topicOf } from '../helpers/broker.js';

const key = randomBytes(32);
const aad = sealAad('tenant-a', 'instance-a');

function bodiesOf(count: number, size: (i: number) => number): Buffer[] {
  return Array.from({ length: count }, (_, i) => randomBytes(size(i)));
}

t.test('threads seal what opens inline, under that key and instance only', async (t) => {
  const pool = new SealWorkers({ threads: 2, minBatchBytes: 0 });
  t.teardown(() => pool.close());
  await pool.start(); // both threads up before the first batch
  const batches = Array.from({ length: 24 }, (_, b) =>
    bodiesOf(1 + (b % 32), (i) => (i * 97 + b) % 3000),
  );
  batches.push([Buffer.alloc(0)]);
  const answers = await Promise.all(batches.map((bodies) => pool.seal(key, aad, bodies)));
  const sealed = answers.map((answer) => answer.envelopes);
  t.same(
    answers.map((answer) => answer.md5s),
    batches.map((bodies) => bodies.map((body) => createHash('md5').update(body).digest('hex'))),
    "each body's MD5 comes back with its envelope",
  );
  let opened = 0;
  for (const [b, bodies] of batches.entries()) {
    t.equal(sealed[b].length, bodies.length);
    for (const [i, body] of bodies.entries()) {
      const envelope = sealed[b][i];
      t.equal(envelope.length, body.length + SEAL_OVERHEAD_BYTES);
      if (openBody(key, envelope, aad)?.equals(body) === true) opened++;
    }
  }
  const total = batches.reduce((n, bodies) => n + bodies.length, 0);
  t.equal(opened, total, 'every envelope opens to its body');
  t.equal(pool.offloaded, batches.length, 'every batch went to a thread');
  t.equal(pool.inline, 0);

  const one = sealed[0][0];
  t.equal(openBody(randomBytes(32), one, aad), null, 'another key does not open it');
  t.equal(openBody(key, one, sealAad('tenant-a', 'instance-b')), null, 'nor another instance');
  const nonces = new Set(sealed.flat().map((e) => e.subarray(1, 13).toString('hex')));
  t.equal(nonces.size, total, 'no nonce repeats across threads');
});

t.test(
  'a thread killed mid-batch: the batch is done inline, the next gets a new thread',
  async (t) => {
    const errors: Error[] = [];
    const pool = new SealWorkers({
      threads: 1,
      minBatchBytes: 0,
      onThreadError: (e) => errors.push(e),
    });
    t.teardown(() => pool.close());
    await pool.seal(
      key,
      aad,
      bodiesOf(2, () => 100),
    ); // the thread is up
    const large = bodiesOf(32, () => 64 * 1024);
    const inFlight = pool.seal(key, aad, large);
    const threads = (pool as unknown as { threads: ({ worker: Worker } | null)[] }).threads;
    // ref() first: if the answer lands before the kill the idle thread is unref()'d, and the
    // process could end before its exit event
    threads[0]?.worker.ref();
    await threads[0]?.worker.terminate();
    const sealed = (await inFlight).envelopes;
    t.ok(
      sealed.every((envelope, i) => openBody(key, envelope, aad)?.equals(large[i]) === true),
      'the batch in flight is answered all the same',
    );
    // the kill may land after the thread answered; if it landed first, the batch fell back
    t.equal(pool.fallbacks, errors.length, 'each fallback is reported');
    const bodies = bodiesOf(3, () => 500);
    const again = (await pool.seal(key, aad, bodies)).envelopes;
    t.ok(
      again.every((envelope, i) => openBody(key, envelope, aad)?.equals(bodies[i]) === true),
      'a new thread seals the next batch',
    );
    t.equal(pool.offloaded, 3);
  },
);

t.test('threads open envelopes; one that does not open answers null', async (t) => {
  const pool = new SealWorkers({ threads: 2, minBatchBytes: 0 });
  t.teardown(() => pool.close());
  const bodies = bodiesOf(20, (i) => i * 77);
  const { envelopes } = await pool.seal(key, aad, bodies);
  const tampered = Buffer.from(envelopes[3]);
  tampered[tampered.length - 1] ^= 1;
  const { envelopes: foreign } = await sealInline(randomBytes(32), aad, [bodies[4]]);
  const input = [...envelopes, tampered, foreign[0], Buffer.alloc(5)];
  const opened = await pool.open(key, aad, input);
  t.equal(opened.length, input.length);
  t.ok(
    bodies.every((body, i) => opened[i]?.equals(body) === true),
    'every sealed body opens to itself',
  );
  t.same(opened.slice(bodies.length), [null, null, null], 'tampered, foreign key, cut: null');
  t.equal(pool.offloaded, 2);
  t.same(await pool.open(key, aad, []), [], 'an empty batch');
});

t.test('past the pending bound, and after close, bodies are sealed inline', async (t) => {
  const pool = new SealWorkers({ threads: 1, minBatchBytes: 0, maxPendingBytes: 1000 });
  const small = bodiesOf(2, () => 400);
  const large = bodiesOf(2, () => 600);
  const [a, b] = (await Promise.all([pool.seal(key, aad, small), pool.seal(key, aad, large)])).map(
    (answer) => answer.envelopes,
  );
  t.equal(pool.offloaded, 1, 'the first batch went to the thread');
  t.equal(pool.inline, 1, 'the second would pass the bound: sealed inline');
  t.ok(a.every((e, i) => openBody(key, e, aad)?.equals(small[i]) === true));
  t.ok(b.every((e, i) => openBody(key, e, aad)?.equals(large[i]) === true));

  const pending = pool.seal(key, aad, small);
  await pool.close();
  t.equal((await pending).envelopes.length, 2, 'a batch in flight at close is answered');
  const after = (await pool.seal(key, aad, small)).envelopes;
  t.equal(openBody(key, after[0], aad)?.equals(small[0]), true);
  t.equal(pool.inline, 2, 'after close: inline');
});

t.test('a batch under minBatchBytes is done inline, a larger one on a thread', async (t) => {
  const pool = new SealWorkers({ threads: 1 });
  t.teardown(() => pool.close());
  t.equal(DEFAULT_MIN_BATCH_BYTES, 4096);
  const small = bodiesOf(3, () => 1024); // 3 KiB: cheaper inline than a thread's round trip
  const { envelopes } = await pool.seal(key, aad, small);
  t.same([pool.inline, pool.offloaded], [1, 0], 'sealed inline');
  t.ok(envelopes.every((e, i) => openBody(key, e, aad)?.equals(small[i]) === true));
  t.same(
    (await pool.open(key, aad, envelopes)).map((b) => b?.toString('hex')),
    small.map((b) => b.toString('hex')),
  );
  t.same([pool.inline, pool.offloaded], [2, 0], 'opened inline');
  const large = bodiesOf(4, () => 1024);
  const sealed = await pool.seal(key, aad, large);
  t.same([pool.inline, pool.offloaded], [2, 1], '4 KiB: on the thread');
  t.same(
    sealed.md5s,
    large.map((b) => createHash('md5').update(b).digest('hex')),
  );
});

t.test('BodyKeys seals through the threads', async (t) => {
  const pool = new SealWorkers({ threads: 1, minBatchBytes: 0 });
  t.teardown(() => pool.close());
  const dataKey = randomBytes(32);
  // the source has a key for t1/i1 only
  const keys = new BodyKeys(
    {
      load: (tenantId, instanceId) =>
        Promise.resolve(`${tenantId}/${instanceId}` === 't1/i1' ? dataKey : null),
    },
    1024 * 1024,
    pool,
  );
  const bodies = bodiesOf(5, (i) => 10 + i);
  const sealed = (await keys.seal('t1', 'i1', bodies))?.envelopes ?? [];
  t.equal(pool.offloaded, 1);
  const instanceAad = sealAad('t1', 'i1');
  t.ok(sealed.every((e, i) => openBody(dataKey, e, instanceAad)?.equals(bodies[i]) === true));

  // openAll: cached plaintexts come from the cache, the rest are opened in one thread batch,
  // plain records pass as they are, an instance with no key fails closed
  const stored = (i: number, overrides: Partial<StoredMessage> = {}): StoredMessage => ({
    topic: 't1/i1/orders',
    queueId: 0,
    queueOffset: i,
    logOffset: 1000 + i * 100,
    size: 0,
    flags: MessageFlags.SEALED,
    attempt: 0,
    tag: '',
    storeTimestampMs: 0,
    bornTimestampMs: 0,
    keys: [],
    properties: {},
    body: sealed[i],
    ...overrides,
  });
  keys.stored('t1', 'i1', [1000, 1100], sealed.slice(0, 2), bodies.slice(0, 2));
  const opened = await keys.openAll([
    stored(0),
    stored(1),
    stored(2),
    stored(3),
    stored(4, { flags: 0, body: Buffer.from('plain') }),
    stored(4, { topic: 't9/i9/other' }),
  ]);
  t.equal(pool.offloaded, 2, 'the two misses went to a thread together');
  t.same(
    opened.map((b) => b?.toString('hex') ?? null),
    [
      ...bodies.slice(0, 4).map((b) => b.toString('hex')),
      Buffer.from('plain').toString('hex'),
      null,
    ],
  );
  // topics interleaved in one batch: each record is looked up under its own instance
  const mixed = await keys.openAll([
    stored(2),
    stored(4, { topic: 't9/i9/other' }),
    stored(3),
    stored(0, { topic: 't1/i1/other-topic' }),
    stored(1, { topic: 't9/i9/other' }),
  ]);
  t.same(
    mixed.map((b) => b?.toString('hex') ?? null),
    [bodies[2].toString('hex'), null, bodies[3].toString('hex'), bodies[0].toString('hex'), null],
  );
});

t.test('a packed batch round-trips; messages across threads are checked', async (t) => {
  const bodies = bodiesOf(4, (i) => i * 10);
  const { packed, lengths } = packBodies(bodies);
  t.equal(packed.byteOffset, 0);
  t.equal(packed.buffer.byteLength, packed.length, 'a buffer of its own (transferable)');
  t.same(
    unpack(packed, lengths).map((b) => b?.toString('hex')),
    bodies.map((b) => b.toString('hex')),
  );
  const sealed = sealPacked(key, aad, packed, lengths);
  t.same(
    sealed.lengths,
    bodies.map((b) => b.length + SEAL_OVERHEAD_BYTES),
  );
  t.same(
    sealed.digests,
    bodies.map((b) => createHash('md5').update(b).digest('hex')),
  );

  const request = {
    id: 1,
    op: 'seal',
    key: new Uint8Array(32),
    aad: new Uint8Array(3),
    packed: packed.buffer,
    lengths,
  };
  t.ok(decodeSealRequest(request));
  t.equal(decodeSealRequest({ ...request, key: new Uint8Array(16) }), null, 'short key');
  t.equal(decodeSealRequest({ ...request, lengths: [1, 2] }), null, 'lengths not the bytes');
  t.equal(decodeSealRequest({ ...request, lengths: [-1, 61] }), null, 'negative length');
  t.equal(decodeSealRequest({ ...request, id: 'x' }), null, 'no id');
  t.equal(decodeSealRequest({ ...request, op: 'burn' }), null, 'unknown op');
  t.equal(decodeSealRequest({ ...request, lengths: [-1, 61] }), null, 'no -1 in a request');
  t.same(unpack(Buffer.from('abc'), [1, -1, 2]), [Buffer.from('a'), null, Buffer.from('bc')]);
  t.ok(decodeSealAnswer({ id: 3, packed: new ArrayBuffer(4), lengths: [-1, 4, -1] }));
  t.equal(decodeSealRequest(null), null);
  t.same(decodeSealAnswer({ id: 2, error: 'boom' }), { id: 2, error: 'boom' });
  t.ok(decodeSealAnswer({ id: 2, packed: new ArrayBuffer(4), lengths: [4] }));
  t.equal(decodeSealAnswer({ id: 2, packed: new ArrayBuffer(4), lengths: [5] }), null);
  t.equal(decodeSealAnswer({ packed: new ArrayBuffer(0), lengths: [] }), null);
  const digest = 'd41d8cd98f00b204e9800998ecf8427e';
  t.same(decodeSealAnswer({ id: 2, packed: new ArrayBuffer(0), lengths: [0], digests: [digest] }), {
    id: 2,
    packed: new ArrayBuffer(0),
    lengths: [0],
    digests: [digest],
  });
  const answer = { id: 2, packed: new ArrayBuffer(0), lengths: [0] };
  t.equal(decodeSealAnswer({ ...answer, digests: [] }), null, 'a digest missing');
  t.equal(decodeSealAnswer({ ...answer, digests: ['XYZ'] }), null, 'not a digest');
  t.equal(decodeSealAnswer({ ...answer, digests: 'd41d' }), null, 'not a list');
  t.same(requestsOf({ requests: [request] }), [request], 'a turn of requests');
  t.equal(requestsOf(request), null, 'one request alone is not a turn of them');
  t.same(decodeSealAnswers({ answers: [answer, { id: 3, error: 'boom' }] }), [
    answer,
    { id: 3, error: 'boom' },
  ]);
  t.equal(
    decodeSealAnswers({ answers: [answer, { id: 3, packed: new ArrayBuffer(1), lengths: [2] }] }),
    null,
    'one bad answer: none of the message is trusted',
  );
  t.equal(decodeSealAnswers(answer), null, 'an answer alone is not a message of them');
});

t.test(
  'opens asked while a thread has opens in flight go together; each seal goes at once',
  async (t) => {
    const pool = new SealWorkers({ threads: 1, minBatchBytes: 0 });
    t.teardown(() => pool.close());
    await pool.start();
    const batches = Array.from({ length: 8 }, (_, b) => bodiesOf(1 + b, (i) => 100 + i * b));
    const sealed = await Promise.all(batches.map((bodies) => pool.seal(key, aad, bodies)));
    t.same([pool.offloaded, pool.posts], [8, 8], 'eight seals, eight messages');
    // asked in one turn (no await between): the first open goes alone, the other seven together
    const opened = await Promise.all(
      sealed.map((answer, b) =>
        b % 2 === 0
          ? pool.open(key, aad, answer.envelopes)
          : pool.open(key, aad, [Buffer.from('x')]),
      ),
    );
    t.same([pool.offloaded, pool.posts], [16, 10], 'eight opens, two messages');
    opened.forEach((bodies, b) =>
      t.same(
        bodies.map((body) => body?.toString('hex') ?? null),
        b % 2 === 0 ? batches[b].map((body) => body.toString('hex')) : [null],
        `batch ${b}: its own results`,
      ),
    );
    // a seal while opens wait: it does not wait with them, and every batch gets its own answer
    const [a, b, c] = await Promise.all([
      pool.open(key, aad, sealed[0].envelopes),
      pool.open(key, aad, sealed[2].envelopes),
      pool.seal(key, aad, batches[3]),
    ]);
    t.same([pool.offloaded, pool.posts], [19, 13]);
    t.same(
      [a, b].map((bodies) => bodies.map((body) => body?.toString('hex'))),
      [batches[0], batches[2]].map((bodies) => bodies.map((body) => body.toString('hex'))),
    );
    t.ok(c.envelopes.every((e, i) => openBody(key, e, aad)?.equals(batches[3][i]) === true));
  },
);

t.test(
  'a broker sealing on threads stores envelopes that open (on threads) after a restart',
  async (t) => {
    const dataKey = randomBytes(32);
    const harness = brokerHarness(t);
    const dataKeys = { load: () => Promise.resolve(dataKey) };
    const topic = topicOf();
    const group = groupOf({ createdAt: Date.now() - 60_000 });
    const bodies = Array.from({ length: 40 }, (_, i) => randomBytes((i * 131) % 5000));
    const first = await harness.open({ dataKeys, sealThreads: 2, openedBodyCacheBytes: 0 });
    const published = await first.publish(
      topic,
      bodies.map((body) => ({ body, bodyEncoding: 'base64' as const })),
    );
    t.equal(published.length, bodies.length);
    t.same(
      published.map((result) => result.bodyMd5),
      bodies.map((body) => createHash('md5').update(body).digest('hex')),
      'bodyMd5 is the MD5 of the plaintext (computed on the thread)',
    );
    // another broker (its own data dir) sealing on the event loop
    const inline = await openTestBroker(t, { dataKeys, sealThreads: 0, openedBodyCacheBytes: 0 });
    const [one] = await inline.publish(topic, [{ body: bodies[1], bodyEncoding: 'base64' }]);
    t.equal(one.bodyMd5, published[1].bodyMd5, 'the same when sealed on the event loop');
    await first.close();

    // reopened without the opened-body cache: every body is read from the log and opened on a
    // thread
    const second = await harness.open({ dataKeys, sealThreads: 1, openedBodyCacheBytes: 0 });
    const received: Buffer[] = [];
    while (received.length < bodies.length) {
      const batch = await second.receive(topic, group, {
        maxMessages: 32,
        waitMs: 1000,
        tags: '*',
      });
      if (batch.length === 0) break;
      received.push(...batch.map((m) => m.body));
    }
    const byHex = (list: Buffer[]) => list.map((b) => b.toString('hex')).sort();
    t.same(byHex(received), byHex(bodies), 'every body comes back as published');
  },
);
