import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  FRAME_HEADER_BYTES,
  checkFrame,
  decodeMessage,
  encodeBlank,
  encodeJournalEntry,
  encodeMessage,
  measureMessage,
  readDispatchFields,
  recordTagEquals,
  tagHash,
} from '../../src/store/record.js';
import { crc32c } from '@node-rs/crc32';
import type { AppendMessage } from '../../src/store/index.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/record-v1.json', import.meta.url), 'utf8'),
) as {
  message: Omit<AppendMessage, 'body'> & { body: string };
  position: { logOffset: number; queueOffset: number; storeTimestampMs: number };
  tagHash: number;
  messageHex: string;
  blank: { logOffset: number; bytesToSegmentEnd: number; hex: string };
  journal: { logOffset: number; payload: string; hex: string };
};
const message: AppendMessage = { ...golden.message, body: Buffer.from(golden.message.body) };

function encode(m: AppendMessage, logOffset = golden.position.logOffset): Buffer {
  const size = measureMessage(m);
  if (typeof size === 'string') throw new Error(size);
  const buf = Buffer.alloc(size);
  encodeMessage(buf, 0, size, m, { ...golden.position, logOffset });
  return buf;
}

t.test('a message record encodes to the frozen golden bytes', async (t) => {
  const buf = encode(message);
  t.equal(buf.toString('hex'), golden.messageHex);
  t.equal(tagHash(message.tag), golden.tagHash);
  t.equal(buf.readUInt32BE(4), crc32c(buf.subarray(8)), 'CRC32C covers bytes 8..end');
});

t.test('blank and journal frames encode to their golden bytes', async (t) => {
  const blank = Buffer.alloc(FRAME_HEADER_BYTES);
  encodeBlank(blank, 0, golden.blank.logOffset, golden.blank.bytesToSegmentEnd);
  t.equal(blank.toString('hex'), golden.blank.hex);
  const check = checkFrame(blank, 0, blank.length, golden.blank.logOffset);
  t.same(check, { status: 'ok', kind: 'blank', length: golden.blank.bytesToSegmentEnd });
  const payload = Buffer.from(golden.journal.payload);
  const j = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  encodeJournalEntry(j, 0, golden.journal.logOffset, payload);
  t.equal(j.toString('hex'), golden.journal.hex);
  t.same(checkFrame(j, 0, j.length, golden.journal.logOffset), {
    status: 'ok',
    kind: 'journal',
    length: j.length,
  });
});

t.test('decode(encode(x)) = x', async (t) => {
  const buf = Buffer.from(golden.messageHex, 'hex');
  const decoded = decodeMessage(buf, 0, buf.length, golden.position.logOffset);
  if (decoded.status !== 'ok') throw new Error(decoded.status);
  t.same(decoded.value, {
    topic: message.topic,
    queueId: message.queueId,
    queueOffset: golden.position.queueOffset,
    logOffset: golden.position.logOffset,
    size: buf.length,
    storeTimestampMs: golden.position.storeTimestampMs,
    bornTimestampMs: message.bornTimestampMs,
    flags: message.flags,
    attempt: message.attempt,
    tag: message.tag,
    keys: message.keys,
    properties: message.properties,
    body: message.body,
  });
  const bare = encode({ topic: 't', queueId: 0, body: Buffer.alloc(0), bornTimestampMs: 0 }, 0);
  const d2 = decodeMessage(bare, 0, bare.length, 0);
  t.equal(d2.status, 'ok');
  if (d2.status === 'ok') {
    t.equal(d2.value.tag, '');
    t.same(d2.value.keys, []);
    t.same(d2.value.properties, {});
    t.equal(d2.value.body.length, 0);
  }
  const fields = readDispatchFields(buf, 0, buf.length);
  t.equal(fields?.tagHash, golden.tagHash);
  t.same(fields?.keys, message.keys);
  t.ok(recordTagEquals(buf, 0, Buffer.from('paid')));
  t.notOk(recordTagEquals(buf, 0, Buffer.from('pain')));
});

t.test('every truncation length decodes as incomplete', async (t) => {
  const buf = Buffer.from(golden.messageHex, 'hex');
  for (let n = 0; n < buf.length; n++) {
    const d = decodeMessage(buf.subarray(0, n), 0, n, golden.position.logOffset);
    if (d.status !== 'incomplete') t.fail(`length ${n} gave ${d.status}`);
  }
  t.pass('all truncations incomplete');
});

t.test('byte-at-a-time input stays incomplete until the last byte', async (t) => {
  const buf = Buffer.from(golden.messageHex, 'hex');
  const growing = Buffer.alloc(buf.length);
  let okAt = -1;
  for (let n = 1; n <= buf.length; n++) {
    growing[n - 1] = buf[n - 1]!;
    const d = decodeMessage(growing, 0, n, golden.position.logOffset);
    if (d.status === 'ok') {
      okAt = n;
      break;
    }
  }
  t.equal(okAt, buf.length);
});

t.test(
  'every flipped bit makes the record corrupt (or incomplete when the length grew)',
  async (t) => {
    const buf = Buffer.from(golden.messageHex, 'hex');
    let bad = 0;
    for (let i = 0; i < buf.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(buf);
        copy[i] = copy[i] ^ (1 << bit);
        const d = decodeMessage(copy, 0, copy.length, golden.position.logOffset);
        if (d.status === 'ok' || d.status === 'unsupported') bad++;
      }
    }
    t.equal(bad, 0);
  },
);

t.test('an unknown version with a valid CRC is unsupported, not corrupt', async (t) => {
  const buf = Buffer.from(golden.messageHex, 'hex');
  buf[8] = 2;
  buf.writeUInt32BE(crc32c(buf.subarray(8)), 4);
  t.same(decodeMessage(buf, 0, buf.length, golden.position.logOffset), {
    status: 'unsupported',
    version: 2,
  });
});

t.test('a record read at the wrong position is corrupt', async (t) => {
  const buf = Buffer.from(golden.messageHex, 'hex');
  const d = decodeMessage(buf, 0, buf.length, golden.position.logOffset + 1);
  t.equal(d.status, 'corrupt');
  const j = Buffer.from(golden.journal.hex, 'hex');
  t.equal(decodeMessage(j, 0, j.length, golden.journal.logOffset).status, 'corrupt');
  const short = Buffer.alloc(24);
  short.writeUInt32BE(5, 0);
  t.equal(checkFrame(short, 0, 24, 0).status, 'corrupt');
});

t.test('measureMessage names the field over its limit', async (t) => {
  const base = { queueId: 0, body: Buffer.alloc(0), bornTimestampMs: 0 };
  t.type(measureMessage({ ...base, topic: '' }), 'string');
  t.type(measureMessage({ ...base, topic: 'x'.repeat(256) }), 'string');
  t.type(measureMessage({ ...base, topic: 't', tag: 'x'.repeat(256) }), 'string');
  t.type(measureMessage({ ...base, topic: 't', keys: ['x'.repeat(70000)] }), 'string');
  t.type(
    measureMessage({ ...base, topic: 't', properties: { ['x'.repeat(70000)]: 'v' } }),
    'string',
  );
  t.equal(tagHash(undefined), 0);
  t.equal(tagHash(''), 0);
});
