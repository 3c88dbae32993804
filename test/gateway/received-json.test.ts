// The receive answer is written by hand (received-json.ts): it must be the bytes fastify's
// serializer writes from the ReceivedMessage schema the OpenAPI document publishes, for every
// kind of field value — escapes, non-ASCII, lone surrogates in user strings, both encodings,
// empty and long bodies, UTF-8 bodies copied as they are and those that must be escaped or are
// not valid UTF-8 — and a streaming receive's line must be one such object.
import Fastify from 'fastify';
import t from 'tap';
import {
  hasJsonEscapeByte,
  integerText,
  receiveAnswer,
  receivedLines,
} from '../../src/gateway/received-json.js';
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
  // UTF-8 bodies of RAW_BODY_MIN_BYTES and more are checked and copied as they are
  message({ body: Buffer.from(`${'z'.repeat(200)} ends with a backslash \\`) }),
  // an encoded surrogate, and bytes that never start a character: not UTF-8
  message({ body: Buffer.from(`${'s'.repeat(200)}\xed\xa0\x80B`, 'latin1') }),
  message({ body: Buffer.concat([Buffer.alloc(200, 0x41), Buffer.from([0xff, 0xfe, 0x41])]) }),
  message({ body: Buffer.from('\ufeffBOM, \u2028 and \u2029 go as they are. '.repeat(5)) }),
  // ASCII text goes out as latin1, anything else as UTF-8: non-ASCII in a short body, in the
  // fields after a body copied as it is, only in a key
  message({ body: Buffer.from('é') }),
  message({ body: Buffer.from('r'.repeat(200)), tag: 'ü-tag' }),
  message({ body: binary, bodyEncoding: 'base64', keys: ['ascii', 'naïve'] }),
  // integers past 2^30 are written in two parts
  message({ queueOffset: 2 ** 31, publishTime: 2 ** 53 - 1, firstDeliveryTime: 1e15 + 7 }),
  message({ queueOffset: 0x40000000, nextVisibleTime: 10_000_000_000, deliveryAttempt: 0 }),
];

/** A buffer's bytes as a string of the same length (every byte one character): exact compare. */
const bytes = (buffer: Buffer): string => buffer.toString('latin1');

async function schemaSerialized(messages: readonly ReceivedMessage[]): Promise<string> {
  return bytes((await schemaAnswer(messages)).payload);
}

/** fastify's answer for the messages, serialized by the ReceivedMessage schema. */
async function schemaAnswer(
  messages: readonly ReceivedMessage[],
): Promise<{ statusCode: number; payload: Buffer }> {
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
    return { statusCode: res.statusCode, payload: res.rawPayload };
  } finally {
    await app.close();
  }
}

t.test('the receive answer is byte for byte what the schema serializer writes', async (t) => {
  for (const [i, m] of MESSAGES.entries()) {
    t.equal(bytes(receiveAnswer([m])), await schemaSerialized([m]), `message ${i}`);
  }
  t.equal(bytes(receiveAnswer(MESSAGES)), await schemaSerialized(MESSAGES), 'all in one answer');
  t.equal(bytes(receiveAnswer([])), await schemaSerialized([]), 'an empty answer');
});

t.test('it is JSON that reads back as the messages', async (t) => {
  const parsed = JSON.parse(receiveAnswer(MESSAGES).toString()) as {
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
  const lines = bytes(receivedLines(MESSAGES)).split('\n');
  t.equal(lines.length, MESSAGES.length + 1, 'a line a message, each ended by a newline');
  t.equal(lines[MESSAGES.length], '');
  for (const [i, m] of MESSAGES.entries()) {
    t.equal(`{"messages":[${lines[i]}]}`, bytes(receiveAnswer([m])), `message ${i}`);
  }
  t.equal(receivedLines([]).length, 0, 'no messages, no line');
});

t.test('the escape scan finds every byte JSON escapes, wherever it sits', async (t) => {
  const escapes = (byte: number): boolean => byte < 0x20 || byte === 0x22 || byte === 0x5c;
  const backing = Buffer.alloc(64, 0x61);
  let wrong = 0;
  let checked = 0;
  for (let byte = 0; byte < 256; byte++) {
    for (let start = 0; start < 4; start++) {
      for (const length of [1, 3, 4, 5, 8, 13, 40]) {
        for (let at = 0; at < length; at++) {
          const view = backing.subarray(start, start + length);
          view.fill(0x61);
          view[at] = byte;
          if (hasJsonEscapeByte(view) !== escapes(byte)) wrong++;
          checked++;
        }
      }
    }
  }
  t.equal(wrong, 0, `${checked} placements of every byte value`);
  t.equal(hasJsonEscapeByte(Buffer.alloc(0)), false, 'an empty body');
  t.equal(hasJsonEscapeByte(Buffer.from([0x80, 0xff, 0xa2, 0xdc, 0x9f, 0xc0, 0xe2])), false);
});

t.test('a number that is not one throws, as the schema serializer does', async (t) => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    t.throws(() => receiveAnswer([message({ queueOffset: bad })]), { code: 'Internal' });
    t.equal((await schemaAnswer([message({ queueOffset: bad })])).statusCode, 500);
  }
  t.equal(
    bytes(receiveAnswer([message({ deliveryAttempt: 2.7 })])),
    await schemaSerialized([message({ deliveryAttempt: 2.7 })]),
    'a fraction truncated by both',
  );
});

t.test('golden bytes of one answer', async (t) => {
  t.equal(
    receiveAnswer([
      message({ body: Buffer.from([0, 1, 2, 0xfe]), bodyEncoding: 'base64' }),
    ]).toString(),
    '{"messages":[{"messageId":"0123456789ABCDEF0123456789ABCDEF",' +
      '"receiptHandle":"AbCd-_efgh0123456789AbCd-_efgh0123456789AbCd-_efg","body":"AAEC/g==",' +
      '"bodyEncoding":"base64","tag":null,"keys":[],"properties":{},"shardingKey":null,' +
      '"queueId":3,"queueOffset":1234567,"publishTime":1764806400123,' +
      '"firstDeliveryTime":1764806400456,"deliveryAttempt":1,"nextVisibleTime":1764806430456}]}',
  );
});

t.test('golden bytes of a UTF-8 body copied as it is', async (t) => {
  const answer = receiveAnswer([
    message({ body: Buffer.from(`${'a'.repeat(120)}h\u00e9llo \u2713`) }),
  ]);
  t.equal(
    answer.toString('hex'),
    Buffer.from(
      '{"messages":[{"messageId":"0123456789ABCDEF0123456789ABCDEF",' +
        '"receiptHandle":"AbCd-_efgh0123456789AbCd-_efgh0123456789AbCd-_efg","body":"',
    ).toString('hex') +
      '61'.repeat(120) +
      '68c3a96c6c6f20e29c93' + // h é l l o ␠ ✓ in UTF-8
      Buffer.from(
        '","bodyEncoding":"utf8","tag":null,"keys":[],"properties":{},"shardingKey":null,' +
          '"queueId":3,"queueOffset":1234567,"publishTime":1764806400123,' +
          '"firstDeliveryTime":1764806400456,"deliveryAttempt":1,"nextVisibleTime":1764806430456}]}',
      ).toString('hex'),
  );
});

t.test('integers are written as String() writes them', async (t) => {
  const values = [0, -0, 1, -1, 9, 10, 0x3fffffff, 0x40000000, -0x40000000, 1e7, 1e7 - 1];
  values.push(2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1e21, 1_764_806_400_123, 10_000_000_000);
  for (let v = 0x40000000; v < 2 ** 53; v = v * 3 + 7) values.push(v, v + 1, -v);
  for (let k = 0; k < 10_000; k++) values.push(1_764_806_400_000 + k * 9_999_991);
  const wrong = values.filter((v) => integerText(v) !== String(v));
  t.same(wrong, []);
});
