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
