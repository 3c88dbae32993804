import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MessageIdCodec } from '../../src/protocol/message-id.js';

const key = Buffer.alloc(32, 1);
const scope = 'tenant-a/inst-1/orders';

t.test('an id maps back to its broker and log offset under the same scope', async (t) => {
  const codec = new MessageIdCodec(key);
  const positions = [
    { brokerId: 0, logOffset: 0 },
    { brokerId: 3, logOffset: 1234567 },
    { brokerId: 65535, logOffset: 2 ** 48 - 1 },
  ];
  const ids = codec.encode(scope, positions);
  t.equal(ids.length, 3);
  for (const [i, id] of ids.entries()) {
    t.match(id, /^[0-9A-F]{32}$/);
    t.same(codec.decode(scope, id), positions[i]);
  }
  t.equal(new Set(ids).size, 3, 'distinct positions give distinct ids');
  t.equal(codec.encodeOne(scope, positions[1]), ids[1], 'encoding is deterministic');
});

t.test('an id is rejected under another scope, another key, or when altered', async (t) => {
  const codec = new MessageIdCodec(key);
  const id = codec.encodeOne(scope, { brokerId: 1, logOffset: 42 });
  t.equal(codec.decode('tenant-b/inst-1/orders', id), null, 'other tenant');
  t.equal(new MessageIdCodec(Buffer.alloc(32, 2)).decode(scope, id), null, 'other key');
  for (let i = 0; i < id.length; i++) {
    const flipped = id.slice(0, i) + (id[i] === 'A' ? 'B' : 'A') + id.slice(i + 1);
    t.equal(codec.decode(scope, flipped), null, `altered at ${i}`);
  }
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    if (codec.decode(scope, randomBytes(16).toString('hex').toUpperCase()) !== null) accepted++;
  }
  t.equal(accepted, 0, 'random ids are rejected');
  for (const bad of ['', 'xyz', id.toLowerCase(), id + '0', id.slice(1), '../' + id.slice(3)]) {
    t.equal(codec.decode(scope, bad), null, `malformed ${JSON.stringify(bad)}`);
  }
});

t.test('positions outside 48 bits are refused', async (t) => {
  const codec = new MessageIdCodec(key);
  t.throws(() => codec.encodeOne(scope, { brokerId: 0, logOffset: 2 ** 48 }), RangeError);
  t.throws(() => codec.encodeOne(scope, { brokerId: 0, logOffset: -1 }), RangeError);
});

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/message-id-v1.json', import.meta.url), 'utf8'),
) as {
  macKeyHex: string;
  scope: string;
  ids: { brokerId: number; logOffset: number; id: string }[];
};

t.test('golden bytes: format v1 ids encode and decode as recorded', async (t) => {
  const codec = new MessageIdCodec(Buffer.from(golden.macKeyHex, 'hex'));
  const positions = golden.ids.map(({ brokerId, logOffset }) => ({ brokerId, logOffset }));
  t.same(
    codec.encode(golden.scope, positions),
    golden.ids.map((g) => g.id),
  );
  for (const { id, ...position } of golden.ids) t.same(codec.decode(golden.scope, id), position);
});

t.test('a bit-flipping client reaches nothing: every single-bit change is refused', async (t) => {
  const codec = new MessageIdCodec(Buffer.from(golden.macKeyHex, 'hex'));
  for (const { id } of golden.ids) {
    const raw = Buffer.from(id, 'hex');
    let accepted = 0;
    for (let bit = 0; bit < 128; bit++) {
      const altered = Buffer.from(raw);
      altered[bit >> 3] ^= 1 << (bit & 7);
      if (codec.decode(golden.scope, altered.toString('hex').toUpperCase()) !== null) accepted++;
    }
    t.equal(accepted, 0, `none of 128 single-bit flips of ${id} is accepted`);
    t.equal(codec.decode(golden.scope, id.toLowerCase()), null, 'only the uppercase spelling');
  }
});
