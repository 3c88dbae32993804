import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { WharfError } from '../../src/errors.js';
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  FrameParser,
  MAX_FRAME_BYTES,
  decodeError,
  decodeFrame,
  decodeRequest,
  decodeResponse,
  encodeCancel,
  encodeError,
  encodeFrame,
  encodeRequest,
  encodeResponse,
  type Frame,
  type OperationName,
} from '../../src/protocol/broker-rpc/index.js';
import { PayloadWriter } from '../../src/protocol/broker-rpc/payload.js';

interface GoldenCase {
  name: string;
  operation: OperationName;
  kind: 'request' | 'response' | 'cancel' | 'error';
  requestId: number;
  value: unknown;
  hex: string;
}

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/broker-rpc-v1.json', import.meta.url), 'utf8'),
) as { cases: GoldenCase[] };

/** The fixture's JSON with `{"$hex": …}` turned back into Buffers. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fixture values feed the codec under test
function fromJson(value: unknown): any {
  if (Array.isArray(value)) return value.map(fromJson);
  if (typeof value === 'object' && value !== null) {
    if ('$hex' in value && typeof value.$hex === 'string') return Buffer.from(value.$hex, 'hex');
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

function encodeCase(c: GoldenCase): Buffer {
  const value = fromJson(c.value);
  switch (c.kind) {
    case 'request':
      return encodeRequest(c.operation, c.requestId, value);
    case 'response':
      return encodeResponse(c.operation, c.requestId, value ?? undefined);
    case 'cancel':
      return encodeCancel(c.operation, c.requestId);
    case 'error':
      return encodeError(
        decodeOk(Buffer.from(c.hex, 'hex')).op,
        c.requestId,
        new WharfError(value.code, value.message, {
          retryAfterMs: value.retryAfterMs,
          details: value.details,
        }),
      );
  }
}

function decodeOk(bytes: Buffer): Frame {
  const result = decodeFrame(bytes);
  if (result.status !== 'ok') throw new Error(`frame did not decode: ${result.status}`);
  return result.frame;
}

/** The value a frame carries, decoded the way its receiver decodes it. */
function decodeCase(t: Test, c: GoldenCase, frame: Frame): unknown {
  switch (c.kind) {
    case 'request': {
      const decoded = decodeRequest(frame);
      if (decoded.status !== 'ok') throw new Error(decoded.reason);
      t.equal(decoded.name, c.operation);
      return decoded.request;
    }
    case 'response': {
      const decoded = decodeResponse(c.operation, frame);
      if (decoded.status !== 'ok') throw new Error(decoded.reason);
      return decoded.response ?? null;
    }
    case 'cancel':
      return frame.payload.length === 0 ? null : frame.payload;
    case 'error': {
      const decoded = decodeError(frame);
      if (decoded.status !== 'ok') throw new Error(decoded.reason);
      const { code, message, retriable, retryAfterMs, details } = decoded.error;
      return JSON.parse(JSON.stringify({ code, message, retriable, retryAfterMs, details }));
    }
  }
}

t.test('golden bytes: every v1 frame encodes as recorded and decodes to its value', async (t) => {
  t.ok(golden.cases.length >= 20);
  for (const c of golden.cases) {
    const bytes = Buffer.from(c.hex, 'hex');
    t.equal(encodeCase(c).toString('hex'), c.hex, `${c.name}: encoded bytes`);
    const frame = decodeOk(bytes);
    t.equal(frame.version, 1, `${c.name}: version`);
    t.equal(frame.kind, FrameKind[c.kind], `${c.name}: kind`);
    t.equal(frame.requestId, c.requestId, `${c.name}: request id`);
    t.same(decodeCase(t, c, frame), fromJson(c.value), `${c.name}: decode(encode(x)) = x`);
  }
});

t.test('the header layout is frozen: length, version, kind, request id, op', async (t) => {
  const bytes = encodeCancel('receive', 0x01020304);
  t.equal(bytes.toString('hex'), '00000008' + '01' + '04' + '01020304' + '0002');
  t.equal(FRAME_HEADER_BYTES, 12);
});

t.test(
  'an error crosses as the same WharfError: code, message, retriable, retry-after',
  async (t) => {
    const sent = new WharfError('Throttled', 'slow down', { retryAfterMs: 250, details: { n: 1 } });
    const decoded = decodeError(decodeOk(encodeError(1, 9, sent)));
    if (decoded.status !== 'ok') return t.fail(decoded.reason);
    t.ok(decoded.error instanceof WharfError);
    t.equal(decoded.error.code, 'Throttled');
    t.equal(decoded.error.message, 'slow down');
    t.equal(decoded.error.retriable, true);
    t.equal(decoded.error.retryAfterMs, 250);
    t.same(decoded.error.details, { n: 1 });

    const internal = decodeError(decodeOk(encodeError(1, 9, new Error('/secret/path failed'))));
    if (internal.status !== 'ok') return t.fail(internal.reason);
    t.equal(internal.error.code, 'Internal', 'a non-Wharf error crosses as Internal');
    t.notMatch(internal.error.message, /secret/, 'its message stays at the broker');

    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const withCycle = decodeError(
      decodeOk(encodeError(1, 9, new WharfError('Conflict', 'c', { details: cyclic }))),
    );
    t.equal(
      withCycle.status === 'ok' && withCycle.error.details,
      undefined,
      'non-JSON details stay',
    );
  },
);

t.test('every truncation of a frame is incomplete, never a wrong frame', async (t) => {
  for (const c of golden.cases) {
    const bytes = Buffer.from(c.hex, 'hex');
    let incomplete = 0;
    for (let length = 0; length < bytes.length; length++) {
      if (decodeFrame(bytes.subarray(0, length)).status === 'incomplete') incomplete++;
    }
    t.equal(incomplete, bytes.length, `${c.name}: all ${bytes.length} prefixes incomplete`);
  }
});

t.test('every truncation of a payload is corrupt, never a value', async (t) => {
  for (const c of golden.cases) {
    if (c.kind === 'cancel') continue;
    const frame = decodeOk(Buffer.from(c.hex, 'hex'));
    let corrupt = 0;
    for (let length = 0; length < frame.payload.length; length++) {
      const cut = { ...frame, payload: frame.payload.subarray(0, length) };
      const status =
        c.kind === 'request'
          ? decodeRequest(cut).status
          : c.kind === 'response'
            ? decodeResponse(c.operation, cut).status
            : decodeError(cut).status;
      if (status === 'corrupt') corrupt++;
    }
    t.equal(corrupt, frame.payload.length, `${c.name}: all cuts corrupt`);
  }
});

t.test('a stream fed one byte at a time yields every frame in order', async (t) => {
  const frames = golden.cases.map((c) => Buffer.from(c.hex, 'hex'));
  const stream = Buffer.concat(frames);
  const parser = new FrameParser();
  const out: Frame[] = [];
  for (let i = 0; i < stream.length; i++) {
    const pushed = parser.push(stream.subarray(i, i + 1));
    t.equal(pushed.corrupt, undefined);
    out.push(...pushed.frames);
  }
  t.equal(out.length, frames.length);
  out.forEach((frame, i) => t.equal(encodeFrame(frame).toString('hex'), golden.cases[i].hex));
  t.equal(parser.bufferedBytes, 0);
});

t.test('a stream split at every point yields the same frames', async (t) => {
  const stream = Buffer.concat(golden.cases.slice(0, 3).map((c) => Buffer.from(c.hex, 'hex')));
  for (let cut = 0; cut <= stream.length; cut++) {
    const parser = new FrameParser();
    const out = [
      ...parser.push(stream.subarray(0, cut)).frames,
      ...parser.push(stream.subarray(cut)).frames,
    ];
    t.equal(Buffer.concat(out.map(encodeFrame)).toString('hex'), stream.toString('hex'));
  }
  const big = encodeRequest('publish', 5, {
    topic: fromJson(golden.cases[0].value).topic,
    messages: [{ body: Buffer.alloc(300_000, 7), bodyEncoding: 'base64' }],
  });
  const parser = new FrameParser();
  const out: Frame[] = [];
  for (let at = 0; at < big.length; at += 1000)
    out.push(...parser.push(big.subarray(at, at + 1000)).frames);
  t.equal(out.length, 1, 'a large frame in many chunks comes out once');
  t.ok(encodeFrame(out[0]).equals(big));
});

t.test('bad headers are corrupt, and a corrupt stream says so', async (t) => {
  const good = encodeCancel('ack', 1);
  const badKind = Buffer.from(good);
  badKind[5] = 9;
  t.equal(decodeFrame(badKind).status, 'corrupt', 'unknown kind');
  t.equal(decodeFrame(Buffer.from('00000003010101', 'hex')).status, 'corrupt', 'under the header');
  const huge = Buffer.alloc(12);
  huge.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  t.equal(decodeFrame(huge).status, 'corrupt', 'over the limit');
  const parser = new FrameParser();
  t.match(parser.push(Buffer.concat([good, badKind])), {
    frames: [{ requestId: 1 }],
    corrupt: /kind/,
  });
});

t.test('unknown versions and operations are unsupported, not corrupt', async (t) => {
  const frame = decodeOk(encodeRequest('health', 1, {}));
  t.match(decodeRequest({ ...frame, version: 2 }), { status: 'unsupported' });
  t.match(decodeRequest({ ...frame, op: 999 }), { status: 'unsupported' });
  t.match(decodeResponse('health', { ...frame, op: 1 }), { status: 'corrupt' });
});

const topic = {
  tenantId: 'T',
  instanceId: 'I',
  topic: 'x',
  messageType: 'NORMAL',
  queueCount: 1,
  retentionHours: 1,
  dedupWindowMs: 1,
  createdAt: 1,
} as const;

function requestFrame(op: number, write: (w: PayloadWriter) => void): Frame {
  const w = new PayloadWriter();
  write(w);
  return { version: 1, kind: FrameKind.request, requestId: 1, op, payload: w.finish() };
}

t.test('payloads are validated, never cast', async (t) => {
  const badType = requestFrame(12, (w) => w.json({ topic: { ...topic, messageType: 'X' } }).u32(0));
  t.match(decodeRequest(badType), { status: 'corrupt', reason: /messageType/ });
  const missing = requestFrame(12, (w) =>
    w.json({ topic: { ...topic, queueCount: undefined } }).u32(0),
  );
  t.match(decodeRequest(missing), { status: 'corrupt', reason: /queueCount/ });
  const notJson = requestFrame(17, (w) => w.str('{').u32(0));
  t.match(decodeRequest(notJson), { status: 'corrupt', reason: /JSON/ });
  const badBlob = requestFrame(5, (w) => w.json({ topic, messageId: { $blob: 3 } }).u32(0));
  t.match(decodeRequest(badBlob), { status: 'corrupt' });
  const badEncoding = requestFrame(1, (w) =>
    w.json(topic).u32(1).u8(7).bytes(Buffer.from('x')).u8(0),
  );
  t.match(decodeRequest(badEncoding), { status: 'corrupt', reason: /encoding/ });
  const forgedCount = requestFrame(1, (w) => w.json(topic).u32(0xffffffff));
  t.match(decodeRequest(forgedCount), { status: 'corrupt', reason: /count/ });
  const extra = requestFrame(17, (w) => w.json({}).u32(0).u8(0));
  t.match(decodeRequest(extra), { status: 'corrupt', reason: /left over/ });
  const badFlag = decodeOk(
    encodeResponse('receive', 1, [
      {
        messageId: 'm',
        receiptHandle: 'r',
        queueId: 0,
        queueOffset: 0,
        publishTime: 0,
        firstDeliveryTime: 0,
        deliveryAttempt: 1,
        nextVisibleTime: 0,
        body: Buffer.alloc(0),
        bodyEncoding: 'utf8',
        tag: 'a',
        keys: [],
        properties: {},
        shardingKey: null,
      },
    ]),
  );
  // from the end: tagged count, shardingKey flag, properties, keys, 'a', its length, the flag
  const flagAt = badFlag.payload.length - 1 - 1 - 4 - 4 - 1 - 4 - 1;
  t.equal(badFlag.payload[flagAt], 1);
  badFlag.payload[flagAt] = 2;
  t.match(decodeResponse('receive', badFlag), { status: 'corrupt', reason: /presence/ });
  const ackFrame = decodeOk(encodeResponse('ack', 1, [{ receiptHandle: 'r', ok: true }]));
  ackFrame.payload[ackFrame.payload.length - 1] = 9;
  t.match(decodeResponse('ack', ackFrame), { status: 'corrupt', reason: /ack status/ });
  const unknownCode = { ...decodeOk(encodeError(1, 1, new WharfError('Conflict', 'c'))) };
  const w = new PayloadWriter();
  w.json({ code: 'NoSuchCode', message: 'm', retriable: false });
  t.match(decodeError({ ...unknownCode, payload: w.finish() }), {
    status: 'corrupt',
    reason: /code/,
  });
});

t.test('an optional field a newer peer adds is skipped by this reader', async (t) => {
  const frame = requestFrame(1, (w) =>
    w
      .json({ ...topic, futureField: 'kept' })
      .u32(1)
      .u8(0)
      .bytes(Buffer.from('hi'))
      .tagged([
        [1, (f) => f.str('TagA')],
        [99, (f) => f.str('from the future')],
      ]),
  );
  const decoded = decodeRequest(frame);
  if (decoded.status !== 'ok' || decoded.name !== 'publish') return t.fail('not a publish');
  t.same(decoded.request.messages, [
    { body: Buffer.from('hi'), bodyEncoding: 'utf8', tag: 'TagA' },
  ]);
  t.match(decoded.request.topic, { futureField: 'kept' }, 'unknown descriptor keys pass through');
});

t.test('a property named __proto__ stays a property', async (t) => {
  const frame = decodeOk(
    encodeRequest('publish', 1, {
      topic,
      messages: [
        { body: Buffer.alloc(0), bodyEncoding: 'utf8', properties: { ['__proto__']: 'x' } },
      ],
    }),
  );
  const decoded = decodeRequest(frame);
  if (decoded.status !== 'ok' || decoded.name !== 'publish') return t.fail('not a publish');
  const properties = decoded.request.messages[0].properties ?? {};
  t.equal(Object.getPrototypeOf(properties), Object.prototype);
  t.same(Object.keys(properties), ['__proto__']);
});
