// Queue reads (src/store/queue-reader.ts) through the store: statuses, tag filters, read-ahead
// blocks and the caches, and reads of one position.
import t from 'tap';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppendMessage, MessageStore } from '../../src/store/index.js';
import { message, openTestStore, storeDir } from '../helpers/store.js';

interface Hooks {
  runRetention(nowMs?: number): Promise<number>;
}
const hooks = (s: MessageStore) => s as unknown as Hooks;

/** Reads queue `queueId` of `topic` from `from` to its end, `perRead` at a time (varying). */
async function drain(store: MessageStore, topic: string, queueId: number, from = 0) {
  const bodies: Buffer[] = [];
  let next = from;
  let perRead = 3;
  for (;;) {
    const r = await store.readQueue(topic, queueId, next, { maxMessages: perRead });
    if (r.status !== 'FOUND') break;
    for (const m of r.messages) {
      if (m.queueOffset !== from + bodies.length) throw new Error(`offset ${m.queueOffset}`);
      bodies.push(m.body);
    }
    next = r.nextQueueOffset;
    perRead = perRead >= 60 ? 3 : perRead + 11;
  }
  return bodies;
}

function varied(topic: string, queueId: number, i: number): AppendMessage {
  return message(topic, queueId, i, {
    body: Buffer.alloc(200 + ((i * 7919) % 2800), `${topic}-${queueId}-${i}-`),
    tag: i % 2 === 0 ? 'a' : 'b',
  });
}

t.test(
  'backlog reads through read-ahead blocks are byte-exact across block and segment ends',
  async (t) => {
    const store = await openTestStore(t, storeDir(t), {
      segmentBytes: 256 * 1024,
      readCacheBytes: 0,
      readAheadBlockBytes: 16 * 1024,
      readAheadCacheBytes: 128 * 1024,
    });
    const sent: AppendMessage[][] = [[], [], []];
    for (let i = 0; i < 900; i += 30) {
      const batch = Array.from({ length: 30 }, (_, k) => varied('t', (i + k) % 3, i + k));
      for (const m of batch) sent[m.queueId].push(m);
      await store.append(batch);
    }
    t.ok(store.stats().segmentCount > 3, 'several segments');
    for (let q = 0; q < 3; q++) {
      const bodies = await drain(store, 't', q);
      t.equal(bodies.length, sent[q].length, `queue ${q}: every message`);
      const bad = bodies.findIndex((b, i) => !b.equals(sent[q][i].body));
      t.equal(bad, -1, `queue ${q}: byte-exact`);
    }
    const stats = store.stats();
    t.ok(stats.readAheadHits > 0, 'blocks served later reads');
    t.ok(stats.readAheadPrefetches > 0, 'the next blocks were fetched ahead');
    t.ok(stats.readAheadCacheBytes <= 128 * 1024 + 16 * 1024, 'within its byte limit');
    const filtered = await store.readQueue('t', 1, 0, {
      maxMessages: 50,
      filter: { tags: new Set(['a']) },
    });
    t.ok(filtered.messages.length > 0);
    t.ok(filtered.messages.every((m) => m.tag === 'a'));
  },
);

t.test('a block read at the log end grows as the log does', async (t) => {
  const store = await openTestStore(t, storeDir(t), {
    segmentBytes: 1024 * 1024,
    readCacheBytes: 0,
    readAheadBlockBytes: 64 * 1024,
  });
  const sent: AppendMessage[] = [];
  for (let round = 0; round < 12; round++) {
    const batch = Array.from({ length: 10 }, (_, k) => varied('t', 0, round * 10 + k));
    sent.push(...batch);
    await store.append(batch);
    const r = await store.readQueue('t', 0, round * 10, { maxMessages: 10 });
    t.equal(r.messages.length, 10);
    t.ok(
      r.messages.every((m, k) => m.body.equals(sent[round * 10 + k].body)),
      `round ${round}`,
    );
  }
  const all = await drain(store, 't', 0);
  t.ok(all.every((b, i) => b.equals(sent[i].body)));
});

t.test('retention drops the blocks of deleted segments; reads below say expired', async (t) => {
  const store = await openTestStore(t, storeDir(t), {
    retentionMs: 60_000,
    readCacheBytes: 0,
    readAheadBlockBytes: 8 * 1024,
  });
  for (let i = 0; i < 300; i += 10) {
    await store.append(
      Array.from({ length: 10 }, (_, k) =>
        message('t', 0, i + k, { body: Buffer.alloc(500, i + k) }),
      ),
    );
  }
  t.equal((await drain(store, 't', 0)).length, 300);
  const cached = store.stats().readAheadCacheBytes;
  t.ok(cached > 0);
  await hooks(store).runRetention(Date.now() + 120_000);
  t.ok(store.stats().readAheadCacheBytes < cached, 'blocks below the log dropped');
  const { minQueueOffset } = store.queueOffsets('t', 0);
  t.ok(minQueueOffset > 0);
  t.equal((await store.readQueue('t', 0, 0, { maxMessages: 10 })).status, 'OFFSET_EXPIRED');
  const rest = await drain(store, 't', 0, minQueueOffset);
  t.equal(rest.length, 300 - minQueueOffset);
  t.ok(rest.every((b, i) => b.equals(Buffer.alloc(500, minQueueOffset + i))));
});

t.test('a topic deleted and recreated reads its new records, not cached old ones', async (t) => {
  const store = await openTestStore(t, storeDir(t), {
    readCacheBytes: 0,
    consumeQueueSegmentEntries: 3000,
  });
  const old = Array.from({ length: 1500 }, (_, i) => varied('gone', 0, i));
  for (let i = 0; i < old.length; i += 300) await store.append(old.slice(i, i + 300));
  t.equal((await drain(store, 'gone', 0)).length, 1500);
  t.ok(store.stats().consumeQueueCacheBytes > 0, 'consume-queue pages cached');
  await store.deleteTopic('gone');
  t.equal(store.stats().consumeQueueCacheBytes, 0, 'the deleted queue dropped its pages');
  const fresh = Array.from({ length: 1200 }, (_, i) =>
    message('gone', 0, i, { body: Buffer.alloc(100 + (i % 300), `new-${i}`) }),
  );
  for (let i = 0; i < fresh.length; i += 300) await store.append(fresh.slice(i, i + 300));
  const bodies = await drain(store, 'gone', 0);
  t.equal(bodies.length, 1200);
  t.ok(bodies.every((b, i) => b.equals(fresh[i].body)));
});

t.test('caches stay within their byte limits with many queues read', async (t) => {
  const store = await openTestStore(t, storeDir(t), {
    segmentBytes: 1024 * 1024,
    readCacheBytes: 0,
    readAheadBlockBytes: 16 * 1024,
    readAheadCacheBytes: 64 * 1024,
    consumeQueueCacheBytes: 2 * 24 * 1024,
    consumeQueueSegmentEntries: 5000,
  });
  for (let i = 0; i < 6000; i += 500) {
    await store.append(Array.from({ length: 500 }, (_, k) => message('t', (i + k) % 5, i + k)));
  }
  for (let q = 0; q < 5; q++) {
    t.equal((await drain(store, 't', q)).length, 1200);
    const stats = store.stats();
    t.ok(stats.readAheadCacheBytes <= 64 * 1024 + 16 * 1024);
    t.ok(stats.consumeQueueCacheBytes <= 2 * 24 * 1024);
  }
});

t.test('a record rotted on disk after it was written is passed over through a block', async (t) => {
  const dir = storeDir(t);
  const store = await openTestStore(t, dir, { segmentBytes: 32 * 1024, readCacheBytes: 0 });
  for (let i = 0; i < 200; i += 20) {
    await store.append(Array.from({ length: 20 }, (_, k) => varied('t', 0, i + k)));
  }
  await store.close();
  // The first segment: recovery after a clean stop checks only the last one.
  const first = join(dir, 'commitlog', readdirSync(join(dir, 'commitlog')).sort()[0]);
  const bytes = readFileSync(first);
  bytes[900] ^= 0x10;
  writeFileSync(first, bytes);
  const again = await openTestStore(t, dir, { readCacheBytes: 0 });
  for (let round = 0; round < 2; round++) {
    const read = await again.readQueue('t', 0, 0, { maxMessages: 32 });
    t.equal(read.messages.length, 31, 'all but the rotted one');
    t.equal(read.nextQueueOffset, 32);
    t.ok(
      read.messages.every((m) => m.body.equals(varied('t', 0, m.queueOffset).body)),
      'the others byte-exact',
    );
  }
  t.equal(again.stats().corruptMessagesSkipped, 1);
});

t.test('blocks end where segments do after a reopen with another segment size', async (t) => {
  const dir = storeDir(t);
  const store = await openTestStore(t, dir, { segmentBytes: 32 * 1024, readCacheBytes: 0 });
  const sent = Array.from({ length: 200 }, (_, i) => varied('t', 0, i));
  for (let i = 0; i < sent.length; i += 20) await store.append(sent.slice(i, i + 20));
  await store.close();
  for (const segmentBytes of [64 * 1024, 16 * 1024]) {
    const again = await openTestStore(t, dir, { segmentBytes, readCacheBytes: 0 });
    const more = Array.from({ length: 40 }, (_, i) => varied('t', 0, sent.length + i));
    await again.append(more.slice(0, 20));
    await again.append(more.slice(20));
    sent.push(...more);
    const bodies = await drain(again, 't', 0);
    t.equal(bodies.length, sent.length);
    t.ok(
      bodies.every((b, i) => b.equals(sent[i].body)),
      `byte-exact with ${segmentBytes}`,
    );
    await again.close();
  }
});

t.test('topics and tags read back exactly, from memory and from the files', async (t) => {
  const dir = storeDir(t);
  const topic = 'tenant-ü/instance-日本/orders';
  const tags = ['', 'a', 'b', 'ä', 'b', 'long-'.repeat(40), 'a'];
  const sent = Array.from({ length: 70 }, (_, i) =>
    message(topic, 0, i, { tag: tags[i % tags.length], keys: [`k${i}`] }),
  );
  const store = await openTestStore(t, dir);
  await store.append(sent.slice(0, 35));
  for (const m of sent.slice(35)) await store.append([m]);
  const check = (got: Awaited<ReturnType<MessageStore['readQueue']>>, label: string) => {
    t.equal(got.messages.length, sent.length, label);
    t.ok(
      got.messages.every(
        (m, i) =>
          m.topic === topic &&
          m.tag === (sent[i].tag ?? '') &&
          m.keys[0] === `k${i}` &&
          m.body.equals(sent[i].body),
      ),
      label,
    );
  };
  check(await store.readQueue(topic, 0, 0, { maxMessages: 100 }), 'from the recent records');
  await store.close();
  const again = await openTestStore(t, dir);
  check(await again.readQueue(topic, 0, 0, { maxMessages: 100 }), 'from the files');
});

t.test('read statuses: no message, overflow, unknown queue, maxBytes', async (t) => {
  const store = await openTestStore(t, storeDir(t));
  t.match(await store.readQueue('t', 0, 0, { maxMessages: 1 }), {
    status: 'NO_MESSAGE',
    nextQueueOffset: 0,
  });
  t.match(await store.readQueue('t', 0, 5, { maxMessages: 1 }), {
    status: 'OFFSET_OVERFLOW',
    nextQueueOffset: 0,
  });
  await store.append(Array.from({ length: 10 }, (_, i) => message('t', 0, i)));
  t.match(await store.readQueue('t', 0, 10, { maxMessages: 1 }), {
    status: 'NO_MESSAGE',
    nextQueueOffset: 10,
  });
  t.match(await store.readQueue('t', 0, 11, { maxMessages: 1 }), {
    status: 'OFFSET_OVERFLOW',
    nextQueueOffset: 10,
  });
  const r = await store.readQueue('t', 0, 2, { maxMessages: 10, maxBytes: 150 });
  t.equal(r.messages.length, 1, 'a message that would pass maxBytes is left for the next read');
  t.equal(r.nextQueueOffset, 3);
  const one = await store.readQueue('t', 0, 0, { maxMessages: 10, maxBytes: 1 });
  t.equal(one.messages.length, 1, 'at least one');
  t.equal(one.nextQueueOffset, 1);
  // reads under a byte budget see every message once, in order, never more bodies than it
  for (const maxBytes of [250, 600, 1_000]) {
    const seen: number[] = [];
    let from = 0;
    while (from < 10) {
      const page = await store.readQueue('t', 0, from, { maxMessages: 10, maxBytes });
      const bytes = page.messages.reduce((sum, m) => sum + m.body.length, 0);
      if (page.messages.length > 1 && bytes > maxBytes) t.fail(`${bytes} bytes > ${maxBytes}`);
      seen.push(...page.messages.map((m) => m.queueOffset));
      t.equal(page.nextQueueOffset, from + page.messages.length);
      from = page.nextQueueOffset;
    }
    t.same(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], `maxBytes ${maxBytes}`);
  }
  const pages = await store.readQueue('t', 0, 0, { maxMessages: 10, maxBytes: 1_000 });
  t.ok(pages.messages.length > 2, 'a budget of several bodies gets several');
});

t.test('tag filter uses the hash then the tag and passes filtered entries', async (t) => {
  const store = await openTestStore(t, storeDir(t), { readCacheBytes: 0 });
  const tags = ['red', 'green', '', 'blue'];
  await store.append(
    Array.from({ length: 40 }, (_, i) => message('t', 0, i, { tag: tags[i % 4] })),
  );
  const r = await store.readQueue('t', 0, 0, {
    maxMessages: 100,
    filter: { tags: new Set(['green', 'blue']) },
  });
  t.equal(r.status, 'FOUND');
  t.equal(r.messages.length, 20);
  t.ok(r.messages.every((m) => m.tag === 'green' || m.tag === 'blue'));
  t.equal(r.nextQueueOffset, 40);
  const none = await store.readQueue('t', 0, 0, {
    maxMessages: 5,
    filter: { tags: new Set(['purple']) },
  });
  t.equal(none.status, 'FOUND');
  t.equal(none.messages.length, 0);
  t.equal(none.nextQueueOffset, 40, 'moved past the filtered entries');
  const few = await store.readQueue('t', 0, 0, {
    maxMessages: 3,
    filter: { tags: new Set(['red']) },
  });
  t.same(
    few.messages.map((m) => m.queueOffset),
    [0, 4, 8],
  );
  t.equal(few.nextQueueOffset, 9);
  const all = await store.readQueue('t', 0, 0, { maxMessages: 100, filter: { tags: new Set() } });
  t.equal(all.messages.length, 40);
});

t.test('readMessage serves live message starts only, from memory and from the file', async (t) => {
  const dir = storeDir(t);
  let store = await openTestStore(t, dir);
  const results = await store.append([message('t', 0, 0, { keys: ['k'] }), message('t', 1, 1)]);
  const [a, b] = results;
  t.match(await store.readMessage(a.logOffset), { topic: 't', queueId: 0, queueOffset: 0 });
  t.match(await store.readMessage(b.logOffset), { queueId: 1, queueOffset: 0 });
  for (const at of [-1, 0.5, a.logOffset + 1, b.logOffset + b.size, 1e12]) {
    t.equal(await store.readMessage(at), null, `nothing at ${at}`);
  }
  await store.close();
  store = await openTestStore(t, dir, { readCacheBytes: 0 });
  const m = await store.readMessage(b.logOffset);
  t.equal(m?.body.toString(), message('t', 1, 1).body.toString(), 'from the file after reopen');
  await store.deleteTopic('t');
  t.equal(await store.readMessage(a.logOffset), null, 'a deleted topic has no messages');
});

t.test('queueEntries: positions and store times without the records', async (t) => {
  const store = await openTestStore(t, storeDir(t), { retentionMs: 60_000 });
  t.same(await store.queueEntries('t', 0, 0, 5), {
    entries: [],
    startQueueOffset: 0,
    nextQueueOffset: 0,
    maxQueueOffset: 0,
  });
  const appended = await store.append(
    Array.from({ length: 10 }, (_, i) => message('t', 0, i, { body: Buffer.alloc(300, i) })),
  );
  const hitsBefore = store.stats().readCacheHits + store.stats().readCacheMisses;
  const some = await store.queueEntries('t', 0, 3, 4);
  t.same(
    some.entries,
    appended.slice(3, 7).map((a, i) => ({
      queueOffset: 3 + i,
      logOffset: a.logOffset,
      storeTimestampMs: a.storeTimestampMs,
      // the records of one append lie back to back: each one's size is the gap to the next
      size: appended[4 + i].logOffset - a.logOffset,
    })),
  );
  t.match(some, { startQueueOffset: 3, nextQueueOffset: 7, maxQueueOffset: 10 });
  t.equal(
    store.stats().readCacheHits + store.stats().readCacheMisses,
    hitsBefore,
    'no record was read',
  );
  t.match(await store.queueEntries('t', 0, 8, 100), {
    startQueueOffset: 8,
    nextQueueOffset: 10,
    entries: [{ queueOffset: 8 }, { queueOffset: 9 }],
  });
  t.match(await store.queueEntries('t', 0, 12, 5), { entries: [], startQueueOffset: 10 });
  // a segment retention deleted: its entries are left out, the read starts at the queue's min
  await store.append(
    Array.from({ length: 5000 }, (_, i) =>
      message('t', 0, 10 + i, { body: Buffer.alloc(300, i % 256) }),
    ),
  );
  await hooks(store).runRetention(Date.now() + 120_000);
  const logMin = store.stats().logMinOffset;
  t.ok(logMin > appended[9].logOffset, 'retention deleted the first records');
  const expired = await store.queueEntries('t', 0, 0, 3000);
  t.ok(expired.entries.length > 0);
  t.ok(
    expired.entries.every((e) => e.logOffset >= logMin),
    'no entry of a deleted record',
  );
});
