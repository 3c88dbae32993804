// The dispatcher: durable records → consume-queue entries and key-index entries → visible →
// listeners; and the re-dispatch of the log's records at open.
import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import { entryLogOffset, entrySize, entryTagHash } from '../../../src/store/consume-queue-entry.js';
import { Dispatcher, Redispatcher } from '../../../src/store/dispatcher.js';
import { FileCache } from '../../../src/store/file-cache.js';
import { KeyIndex } from '../../../src/store/key-index.js';
import { QueuePageCache } from '../../../src/store/queue-page-cache.js';
import { QueueTable } from '../../../src/store/queue-table.js';
import type { DispatchRecord } from '../../../src/store/record.js';
import { encodeMessage, measureMessage } from '../../../src/store/record.js';
import type { AppendMessage } from '../../../src/store/index.js';

async function setup(t: Test) {
  const dir = t.testdir();
  const cache = new FileCache(16);
  const queues = new QueueTable(dir, join(dir, 'consumequeue'), 64, cache, new QueuePageCache(0));
  await queues.load();
  const { index } = await KeyIndex.open(join(dir, 'index'), 64, 256, cache, undefined);
  const errors: unknown[] = [];
  const logger = {
    info: () => undefined,
    warn: () => undefined,
    error: (o: object) => errors.push(o),
  };
  const dispatcher = new Dispatcher(queues, index, 0, logger);
  t.teardown(async () => {
    for (const q of queues.all()) await q.settle().catch(() => undefined);
    await cache.closeAll();
  });
  return { dir, cache, queues, index, dispatcher, errors };
}

function rec(
  topic: string,
  queueId: number,
  queueOffset: number,
  logOffset: number,
  keys?: string[],
): DispatchRecord {
  return {
    topic,
    queueId,
    queueOffset,
    logOffset,
    size: 100,
    tagHash: 7,
    storeTimestampMs: 1000 + logOffset,
    keys,
  };
}

async function keyHits(index: KeyIndex, topic: string, key: string): Promise<number[]> {
  const found: number[] = [];
  for await (const logOffset of index.candidates(topic, key, 0)) found.push(logOffset);
  return found;
}

t.test(
  'dispatch writes entries, makes them visible, then wakes each touched queue once',
  async (t) => {
    const { queues, index, dispatcher } = await setup(t);
    const woken: [string, number, number][] = [];
    const off = dispatcher.onDispatch((topic, queueId, max) => woken.push([topic, queueId, max]));
    await dispatcher.dispatch(
      [rec('a', 0, 0, 0, ['k1']), rec('a', 1, 0, 100), rec('a', 0, 1, 200), rec('b', 0, 0, 300)],
      400,
    );
    t.equal(dispatcher.dispatchedLogOffset, 400);
    t.same(woken, [
      ['a', 0, 2],
      ['a', 1, 1],
      ['b', 0, 1],
    ]);
    const q = queues.get('a', 0)!;
    t.equal(q.maxQueueOffset, 2);
    t.equal(q.nextQueueOffset, 2, 'the next append continues after what is visible');
    const entries = await q.readEntries(0, 2);
    t.same(
      [0, 1].map((i) => [
        entryLogOffset(entries, i),
        entrySize(entries, i),
        entryTagHash(entries, i),
      ]),
      [
        [0, 100, 7],
        [200, 100, 7],
      ],
    );
    t.same(await keyHits(index, 'a', 'k1'), [0], 'keys go to the key index');
    off();
    await dispatcher.dispatch([rec('a', 0, 2, 400)], 500);
    t.equal(woken.length, 3, 'an unsubscribed listener is not called');
  },
);

t.test('a throwing listener is logged and the others still run', async (t) => {
  const { dispatcher, errors } = await setup(t);
  let called = 0;
  dispatcher.onDispatch(() => {
    throw new Error('boom');
  });
  dispatcher.onDispatch(() => called++);
  await dispatcher.dispatch([rec('a', 0, 0, 0)], 100);
  t.equal(called, 1);
  t.equal(errors.length, 1);
});

t.test('records of a deleted topic below its deletion are skipped', async (t) => {
  const { queues, dispatcher } = await setup(t);
  queues.forget('gone', 500);
  await dispatcher.dispatch([rec('gone', 0, 0, 100), rec('gone', 0, 0, 600)], 700);
  t.equal(queues.get('gone', 0)?.maxQueueOffset, 1, 'only the record after the deletion');
  const entries = await queues.get('gone', 0)!.readEntries(0, 1);
  t.equal(entryLogOffset(entries, 0), 600);
});

t.test(
  'no notify during recovery; entries and keys below their checkpoints are not redone',
  async (t) => {
    const { queues, index, dispatcher } = await setup(t);
    let woken = 0;
    dispatcher.onDispatch(() => woken++);
    await dispatcher.dispatch([rec('a', 0, 0, 0, ['k']), rec('a', 0, 1, 100, ['k'])], 200, {
      cqFromLogOffset: 100,
      indexFromLogOffset: 200,
      notify: false,
    });
    t.equal(woken, 0);
    t.same(await keyHits(index, 'a', 'k'), [], 'keys below the index checkpoint are in it already');
    const q = queues.get('a', 0)!;
    t.equal(q.maxQueueOffset, 2, 'the entry at queueOffset 1 was written');
  },
);

t.test('takeDirty lists the files written since the last call; forget drops a queue', async (t) => {
  const { queues, dispatcher } = await setup(t);
  await dispatcher.dispatch([rec('a', 0, 0, 0), rec('b', 0, 0, 100)], 200);
  await dispatcher.flushQueues();
  const a = queues.get('a', 0)!;
  const b = queues.get('b', 0)!;
  const first = dispatcher.takeDirty();
  t.ok(
    first.some((path) => path.startsWith(a.dir)) && first.some((path) => path.startsWith(b.dir)),
    'both queues’ files',
  );
  t.same(dispatcher.takeDirty(), [], 'nothing new: nothing listed');
  dispatcher.markWritten([first[0]]);
  t.same(dispatcher.takeDirty(), [first[0]], 'a file a checkpoint could not sync is listed again');
  await dispatcher.dispatch([rec('b', 0, 1, 200)], 300);
  dispatcher.forget(b);
  await dispatcher.flushQueues();
  t.notOk(
    dispatcher.takeDirty().some((path) => path.startsWith(b.dir)),
    'a forgotten queue is not listed',
  );
});

/** Encodes messages one after another as a log would hold them. */
function logOf(
  messages: AppendMessage[],
  queueOffsets: number[],
): { buf: Buffer; frames: [number, number][] } {
  const sizes = messages.map((m) => measureMessage(m) as number);
  const buf = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
  const frames: [number, number][] = [];
  let pos = 0;
  messages.forEach((m, i) => {
    encodeMessage(buf, pos, sizes[i], m, {
      logOffset: pos,
      queueOffset: queueOffsets[i],
      storeTimestampMs: 5000 + i,
    });
    frames.push([pos, sizes[i]]);
    pos += sizes[i];
  });
  return { buf, frames };
}

t.test('the redispatcher dispatches the scanned records past the checkpoints', async (t) => {
  const { queues, index, dispatcher } = await setup(t);
  // orders/1 #0 (below both checkpoints), orders/0 #0, orders/0 #1, other/0 #0.
  const messages: AppendMessage[] = [0, 1, 2, 3].map((i) => ({
    topic: i === 3 ? 'other' : 'orders',
    queueId: i === 0 ? 1 : 0,
    tag: 'tag',
    keys: [`key${i}`],
    body: Buffer.from(`body ${i}`),
    bornTimestampMs: 1,
  }));
  const { buf, frames } = logOf(messages, [0, 0, 1, 0]);
  // Entries up to the second record are on disk already, keys up to the third.
  const redispatch = new Redispatcher(dispatcher, queues, frames[1][0], frames[2][0]);
  redispatch.onFrame(buf, 0, 20, 0, 'blank');
  for (const [pos, length] of frames) redispatch.onFrame(buf, pos, length, pos, 'message');
  const end = buf.length;
  await redispatch.afterChunk(end);
  await redispatch.afterChunk(end);
  t.equal(redispatch.redispatched, 3, 'records below both checkpoints are skipped');
  t.equal(redispatch.lastStoreTimestampMs, 5003);
  t.same(await keyHits(index, 'orders', 'key1'), [], 'below the key-index checkpoint');
  t.same(await keyHits(index, 'orders', 'key2'), [frames[2][0]]);
  t.same(await keyHits(index, 'other', 'key3'), [frames[3][0]], 'each record keeps its topic');
  t.equal(queues.get('orders', 1), undefined, 'no entry below the consume-queue checkpoint');
  t.equal(queues.get('orders', 0)?.maxQueueOffset, 2);
  t.equal(queues.get('other', 0)?.maxQueueOffset, 1);
  await redispatch.finish(end, 0);
  t.equal(dispatcher.dispatchedLogOffset, end);
  t.equal(queues.get('orders', 0)?.nextQueueOffset, 2);
});

t.test('finish forgets entries past a log that lost records the checkpoint had', async (t) => {
  const { queues, dispatcher } = await setup(t);
  await dispatcher.dispatch([rec('a', 0, 0, 0), rec('a', 0, 1, 100), rec('a', 0, 2, 200)], 300);
  await dispatcher.flushQueues();
  await queues.get('a', 0)!.settle();
  const redispatch = new Redispatcher(dispatcher, queues, 300, 300);
  await redispatch.finish(150, 0);
  t.equal(dispatcher.dispatchedLogOffset, 150, 'dispatched goes back to the end of the log');
  const q = queues.get('a', 0)!;
  t.equal(q.maxQueueOffset, 2, 'entries pointing past the log are gone');
  t.equal(q.nextQueueOffset, 2);
});
