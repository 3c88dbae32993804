// The receive answer is written by hand (received-json.ts): it must be the bytes fastify's
// serializer writes from the ReceivedMessage schema the OpenAPI document publishes, for every
// kind of field value — escapes, non-ASCII, lone surrogates in user strings, both encodings,
// empty and long bodies — and a streaming receive's line must be one such object.
import Fastify from 'fastify';
import t from 'tap';
import { receiveAnswerJson, receivedMessageJson } from '../../src/gateway/received-json.js';
import { MESSAGE_COMPONENTS } from '../../src/gateway/schemas/messages.js';
import type { ReceivedMessage } from '../../src/model/index.js';

function message(overrides: Partial<ReceivedMessage>): ReceivedMessage {
  return {
    messageId: '0123456789ABCDEF0123456789ABCDEF',
    receiptHandle: 'AbCd-_efgh0123456789AbCd-_efgh0123456789AbCd-_efg',
    body: Buffer.from('hello'),
    bodyEncoding: 'utf8',
    tag: null,
    keys: [],
    properties: {},
    shardingKey: null,
    queueId: 3,
    queueOffset: 1_234_567,
    publishTime: 1_764_806_400_123,
    firstDeliveryTime: 1_764_806_400_456,
    deliveryAttempt: 1,
    nextVisibleTime: 1_764_806_430_456,
    ...overrides,
  };
}

const binary = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 37) % 256));
const MESSAGES: ReceivedMessage[] = [
  message({}),
  message({ body: binary, bodyEncoding: 'base64' }),
  message({ body: Buffer.alloc(0), bodyEncoding: 'base64' }),
  message({ body: Buffer.alloc(0) }),
  message({ body: Buffer.from('quote " backslash \\ newline \n tab \t nul \u0000 end') }),
  message({ body: Buffer.from('héllo wörld ✓ 😀 '.repeat(100)) }),
  message({ body: Buffer.from(`${'x'.repeat(6000)}"`) }),
  message({ body: Buffer.from('y'.repeat(6000)) }),
  message({ body: Buffer.from([0xff, 0xfe, 0x41]) }), // invalid UTF-8: replacement characters
  message({
    tag: 'Tag"A',
    keys: ['k1', 'with "quote"', 'lone \ud800 surrogate', ''],
    properties: { a: '1', 'b"\\': 'v\n', ü: '\ud83d\ude00', empty: '' },
    shardingKey: 'order-42',
  }),
  message({ tag: '', shardingKey: '', deliveryAttempt: 17, queueOffset: 0 }),
];

async function schemaSerialized(messages: readonly ReceivedMessage[]): Promise<string> {
  return (await schemaAnswer(messages)).payload;
}

/** fastify's answer for the messages, serialized by the ReceivedMessage schema. */
async function schemaAnswer(
  messages: readonly ReceivedMessage[],
): Promise<{ statusCode: number; payload: string }> {
  const app = Fastify();
  for (const schema of MESSAGE_COMPONENTS) app.addSchema(schema);
  app.get(
    '/',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            required: ['messages'],
            properties: { messages: { type: 'array', items: { $ref: 'ReceivedMessage#' } } },
          },
        },
      },
    },
    () => ({
      messages: messages.map((m) => ({
        ...m,
        body: m.body.toString(m.bodyEncoding === 'base64' ? 'base64' : 'utf8'),
      })),
    }),
  );
  try {
    const res = await app.inject({ method: 'GET', url: '/' });
    return { statusCode: res.statusCode, payload: res.payload };
  } finally {
    await app.close();
  }
}

t.test('the receive answer is byte for byte what the schema serializer writes', async (t) => {
  for (const [i, m] of MESSAGES.entries()) {
    t.equal(receiveAnswerJson([m]), await schemaSerialized([m]), `message ${i}`);
  }
  t.equal(receiveAnswerJson(MESSAGES), await schemaSerialized(MESSAGES), 'all in one answer');
  t.equal(receiveAnswerJson([]), await schemaSerialized([]), 'an empty answer');
});

t.test('it is JSON that reads back as the messages', async (t) => {
  const parsed = JSON.parse(receiveAnswerJson(MESSAGES)) as {
    messages: Record<string, unknown>[];
  };
  t.equal(parsed.messages.length, MESSAGES.length);
  t.same(
    Buffer.from(parsed.messages[1].body as string, 'base64'),
    binary,
    'a base64 body decodes to its bytes',
  );
  t.equal(parsed.messages[4].body, MESSAGES[4].body.toString('utf8'), 'escapes read back');
  t.same(parsed.messages[9].properties, MESSAGES[9].properties);
});

t.test('a stream line is one message of the answer', async (t) => {
  for (const m of MESSAGES) {
    t.equal(`{"messages":[${receivedMessageJson(m)}]}`, receiveAnswerJson([m]));
  }
});

t.test('a number that is not one throws, as the schema serializer does', async (t) => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    t.throws(() => receiveAnswerJson([message({ queueOffset: bad })]), { code: 'Internal' });
    t.equal((await schemaAnswer([message({ queueOffset: bad })])).statusCode, 500);
  }
  t.equal(
    receiveAnswerJson([message({ deliveryAttempt: 2.7 })]),
    await schemaSerialized([message({ deliveryAttempt: 2.7 })]),
    'a fraction truncated by both',
  );
});

t.test('golden bytes of one answer', async (t) => {
  t.equal(
    receiveAnswerJson([message({ body: Buffer.from([0, 1, 2, 0xfe]), bodyEncoding: 'base64' })]),
    '{"messages":[{"messageId":"0123456789ABCDEF0123456789ABCDEF",' +
      '"receiptHandle":"AbCd-_efgh0123456789AbCd-_efgh0123456789AbCd-_efg","body":"AAEC/g==",' +
      '"bodyEncoding":"base64","tag":null,"keys":[],"properties":{},"shardingKey":null,' +
      '"queueId":3,"queueOffset":1234567,"publishTime":1764806400123,' +
      '"firstDeliveryTime":1764806400456,"deliveryAttempt":1,"nextVisibleTime":1764806430456}]}',
  );
});
