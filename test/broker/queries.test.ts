// Queries' time cursor: versioned JSON in base64url, cursors handed out before versions still
// page, and a forged, future or malformed cursor is InvalidArgument.
import t from 'tap';
import { openTestBroker, text, topicOf } from '../helpers/broker.js';

const cursorOf = (value: unknown): string =>
  Buffer.from(JSON.stringify(value)).toString('base64url');

t.test('a time cursor is {"v":1,"next":{…}} and pages on', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 2 });
  await broker.publish(topic, [text('a'), text('b'), text('c')]);
  const range = { fromMs: 0, toMs: Date.now() + 1000, limit: 2 };
  const page = await broker.queryByTime(topic, range);
  const cursor = JSON.parse(Buffer.from(page.nextCursor!, 'base64url').toString()) as unknown;
  t.match(cursor, { v: 1, next: { 0: Number, 1: Number } });
  const legacy = cursorOf({ next: (cursor as { next: object }).next });
  const rest = await broker.queryByTime(topic, { ...range, cursor: legacy });
  t.equal(page.messages.length + rest.messages.length, 3, 'a cursor without a version pages on');
});

t.test('bad cursors are InvalidArgument', async (t) => {
  const broker = await openTestBroker(t);
  const topic = topicOf({ queueCount: 1 });
  const range = { fromMs: 0, toMs: Date.now(), limit: 2 };
  for (const cursor of [
    'not base64 json',
    cursorOf({ v: 2, next: { 0: 1 } }),
    cursorOf({ v: 1, next: { 0: -1 } }),
    cursorOf({ v: 1, next: { x: 1 } }),
    cursorOf({ v: 1, next: [1] }),
    cursorOf([1]),
  ]) {
    await t.rejects(
      broker.queryByTime(topic, { ...range, cursor }),
      { code: 'InvalidArgument', message: 'invalid cursor' },
      cursor,
    );
  }
});

t.test(
  'a query by time reads the records of its page only, not a page from every queue',
  async (t) => {
    const broker = await openTestBroker(t);
    const topic = topicOf({ queueCount: 16 });
    for (let i = 0; i < 8; i++) {
      await broker.publish(
        topic,
        Array.from({ length: 16 }, (_, k) => text(`m${i}-${k}`)),
      );
    }
    const reads = () => {
      const s = broker.stats();
      return s.readCacheHits + s.readCacheMisses;
    };
    const before = reads();
    const page = await broker.queryByTime(topic, { fromMs: 0, toMs: Date.now() + 1000, limit: 2 });
    t.equal(page.messages.length, 2);
    t.ok(page.nextCursor, 'more to come');
    // two records, each looked up as its header and then whole
    t.ok(reads() - before <= 4, `records read for a page of 2: ${(reads() - before) / 2}`);
    let seen = page.messages.length;
    let cursor = page.nextCursor;
    while (cursor !== undefined) {
      const next = await broker.queryByTime(topic, {
        fromMs: 0,
        toMs: Date.now() + 1000,
        limit: 7,
        cursor,
      });
      seen += next.messages.length;
      cursor = next.nextCursor;
    }
    t.equal(seen, 128, 'every message, once, over the pages');
  },
);
