import t from 'tap';
import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ReceiptHandleCodec, type Receipt } from '../../src/protocol/receipt-handle.js';
import { BlockCipher } from '../../src/protocol/block-cipher.js';

const key = Buffer.alloc(32, 9);
const scope = 'tenant-a/inst-1/orders/group-1';

t.test('a handle decodes to the delivery it was issued for', async (t) => {
  const codec = new ReceiptHandleCodec(key);
  const receipts = [
    {
      brokerId: 0,
      queueId: 0,
      queueOffset: 0,
      attempt: 1,
      consumerSlot: 0,
    },
    {
      brokerId: 7,
      queueId: 65535,
      queueOffset: 2 ** 48 - 1,
      attempt: 1000,
      consumerSlot: 2 ** 24 - 1,
    },
  ];
  const handles = codec.encode(scope, receipts);
  for (const [i, handle] of handles.entries()) {
    t.match(handle, /^[A-Za-z0-9_-]{43}$/);
    t.same(codec.decode(scope, handle), receipts[i]);
  }
});

t.test('forged, altered, spliced or foreign handles are rejected', async (t) => {
  const codec = new ReceiptHandleCodec(key);
  const [a, b] = codec.encode(scope, [
    { brokerId: 0, queueId: 1, queueOffset: 10, attempt: 1, consumerSlot: 0 },
    { brokerId: 0, queueId: 2, queueOffset: 20, attempt: 2, consumerSlot: 3 },
  ]) as [string, string];
  t.equal(codec.decode('tenant-b/inst-1/orders/group-1', a), null, 'other tenant');
  t.equal(codec.decode('tenant-a/inst-1/orders/group-2', a), null, 'other group');
  t.equal(new ReceiptHandleCodec(Buffer.alloc(32, 8)).decode(scope, a), null, 'other key');
  const raw = Buffer.from(a, 'base64url');
  for (let i = 0; i < raw.length; i++) {
    const altered = Buffer.from(raw);
    altered[i] = altered[i] ^ 0x01;
    t.equal(codec.decode(scope, altered.toString('base64url')), null, `bit flipped in byte ${i}`);
  }
  const rawB = Buffer.from(b, 'base64url');
  const spliced = Buffer.concat([raw.subarray(0, 16), rawB.subarray(16)]).toString('base64url');
  t.equal(codec.decode(scope, spliced), null, 'blocks of two handles spliced');
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    if (codec.decode(scope, randomBytes(32).toString('base64url')) !== null) accepted++;
  }
  t.equal(accepted, 0, 'random handles are rejected');
  for (const bad of ['', 'x', a + 'A', a.slice(1), a.replace(/.$/, '=')]) {
    t.equal(codec.decode(scope, bad), null, `malformed ${JSON.stringify(bad)}`);
  }
});

t.test('the block cipher wants a 16-byte key', async (t) => {
  t.throws(() => new BlockCipher(Buffer.alloc(8)), RangeError);
});

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/receipt-handle-v2.json', import.meta.url), 'utf8'),
) as {
  macKeyHex: string;
  scope: string;
  handles: { receipt: Receipt; handle: string }[];
};
const goldenKey = Buffer.from(golden.macKeyHex, 'hex');

/** AES-CMAC (RFC 4493) for messages of whole blocks, written from the RFC for this test. */
function cmac(key: Buffer, message: Buffer): Buffer {
  const aes = (block: Buffer) =>
    createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(block);
  const l = aes(Buffer.alloc(16));
  const k1 = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) k1[i] = ((l[i] << 1) | (i < 15 ? l[i + 1] >> 7 : 0)) & 0xff;
  if ((l[0] & 0x80) !== 0) k1[15] ^= 0x87;
  let state = Buffer.alloc(16);
  for (let at = 0; at < message.length; at += 16) {
    const block = Buffer.from(message.subarray(at, at + 16));
    for (let i = 0; i < 16; i++) block[i] ^= state[i] ^ (at + 16 === message.length ? k1[i] : 0);
    state = aes(block);
  }
  return state;
}

/** The tag as the codec's opening comment specifies it, computed independently. */
function specTag(fields: Buffer, scope: string): Buffer {
  const key = Buffer.from(
    hkdfSync('sha256', goldenKey, Buffer.alloc(0), 'wharf/receipt-handle/v2', 16),
  );
  const s = createHash('sha256').update(scope).digest().subarray(0, 16);
  return cmac(key, Buffer.concat([s, fields]));
}

t.test("the test's AES-CMAC matches RFC 4493's examples", async (t) => {
  const key = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
  const m = Buffer.from(
    '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
      '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    'hex',
  );
  t.equal(cmac(key, m.subarray(0, 16)).toString('hex'), '070a16b46b4d4144f79bdd9dd04a287c');
  t.equal(cmac(key, m).toString('hex'), '51f0bebf7e3b9d92fc49741779363cfe');
});

t.test(
  'golden bytes: format v2 encodes to the recorded handles and decodes them back',
  async (t) => {
    const codec = new ReceiptHandleCodec(goldenKey);
    const handles = codec.encode(
      golden.scope,
      golden.handles.map((h) => h.receipt),
    );
    t.same(
      handles,
      golden.handles.map((h) => h.handle),
    );
    for (const { receipt, handle } of golden.handles) {
      t.same(codec.decode(golden.scope, handle), receipt);
      const raw = Buffer.from(handle, 'base64url');
      t.equal(raw[0], 2, 'version byte');
      t.same(raw.subarray(16), specTag(raw.subarray(0, 16), golden.scope), 'tag as documented');
    }
  },
);

t.test('only the canonical base64url spelling of a handle is accepted', async (t) => {
  const codec = new ReceiptHandleCodec(goldenKey);
  const handle = golden.handles[0].handle;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(handle[42]);
  let spellings = 0;
  for (let spare = 1; spare < 4; spare++) {
    const other = handle.slice(0, 42) + alphabet[last | spare];
    t.same(Buffer.from(other, 'base64url'), Buffer.from(handle, 'base64url'), 'same bytes');
    t.equal(codec.decode(golden.scope, other), null, `spare bits ${spare} refused`);
    spellings++;
  }
  t.equal(spellings, 3);
  const standard = Buffer.from(golden.handles[1].handle, 'base64url').toString('base64');
  t.not(standard, golden.handles[1].handle);
  t.equal(codec.decode(golden.scope, standard), null, 'standard base64 alphabet refused');
  t.equal(codec.decode(golden.scope, `${handle}=`), null, 'padding refused');
  t.equal(codec.decode(golden.scope, ` ${handle}`), null, 'whitespace refused');
});

t.test('a bit-flipping client reaches nothing: every single-bit change is refused', async (t) => {
  const codec = new ReceiptHandleCodec(goldenKey);
  const raw = Buffer.from(golden.handles[0].handle, 'base64url');
  let accepted = 0;
  for (let bit = 0; bit < raw.length * 8; bit++) {
    const altered = Buffer.from(raw);
    altered[bit >> 3] ^= 1 << (bit & 7);
    if (codec.decode(golden.scope, altered.toString('base64url')) !== null) accepted++;
  }
  t.equal(accepted, 0, 'none of 256 single-bit flips is accepted');
});

t.test('a handle is bound to the group incarnation and to format version 2', async (t) => {
  const codec = new ReceiptHandleCodec(goldenKey);
  const handle = golden.handles[0].handle;
  const recreated = golden.scope.replace(/@.*$/, '@fedcba9876543210');
  t.equal(codec.decode(recreated, handle), null, 'same group name, new incarnation');
  // a v1 handle with a valid tag (the MAC covers the version byte, so one cannot be forged;
  // this one is made with the key) is refused for its version
  const fields = Buffer.from(handle, 'base64url').subarray(0, 16);
  fields[0] = 1;
  const v1 = Buffer.concat([fields, specTag(fields, golden.scope)]).toString('base64url');
  t.equal(codec.decode(golden.scope, v1), null, 'version 1 refused');
  t.throws(
    () => codec.encode(golden.scope, [{ ...golden.handles[0].receipt, queueOffset: 2 ** 48 }]),
    RangeError,
  );
});

t.test(
  'the reset epoch is in the tag, not the fields: S xor (12 zero bytes | epoch u32)',
  async (t) => {
    const codec = new ReceiptHandleCodec(goldenKey);
    const receipt = { ...golden.handles[0].receipt, epoch: 3 };
    const [handle] = codec.encode(golden.scope, [receipt]);
    const raw = Buffer.from(handle, 'base64url');
    const plain = Buffer.from(golden.handles[0].handle, 'base64url');
    t.same(raw.subarray(0, 16), plain.subarray(0, 16), 'the same fields as at epoch 0');
    const s = createHash('sha256').update(golden.scope).digest().subarray(0, 16);
    s.writeUInt32BE((s.readUInt32BE(12) ^ 3) >>> 0, 12);
    const key = Buffer.from(
      hkdfSync('sha256', goldenKey, Buffer.alloc(0), 'wharf/receipt-handle/v2', 16),
    );
    t.same(
      raw.subarray(16),
      cmac(key, Buffer.concat([s, raw.subarray(0, 16)])),
      'tag as documented',
    );
    t.equal(handle, 'AgAAAAMAAAAAABEAAQAAAAmwPHoPtMI7Pwe71RnuaK4', 'golden bytes');
    const epochOf = (epoch: number) => () => epoch;
    t.same(codec.decodeMany(golden.scope, [handle], epochOf(3)), [receipt], 'its own epoch');
    t.same(
      codec.decodeMany(golden.scope, [handle], epochOf(5)),
      [receipt],
      'an older epoch than its cursor’s is read as such (the broker answers it expired)',
    );
    t.same(codec.decodeMany(golden.scope, [handle], epochOf(2)), [null], 'a later epoch: refused');
    t.equal(codec.decode(golden.scope, handle), null, 'epoch 0: refused');
    t.same(
      codec.decodeMany(golden.scope, [golden.handles[0].handle], epochOf(3)),
      [golden.handles[0].receipt],
      'an epoch-0 handle under a cursor of epoch 3: read as epoch 0',
    );
  },
);
