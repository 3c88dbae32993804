import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ReceiptHandleCodec } from '../../src/protocol/receipt-handle.js';
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
      issuedAtSec: 1_700_000_000,
    },
    {
      brokerId: 7,
      queueId: 65535,
      queueOffset: 2 ** 48 - 1,
      attempt: 1000,
      consumerSlot: 2 ** 24 - 1,
      issuedAtSec: 0,
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
    { brokerId: 0, queueId: 1, queueOffset: 10, attempt: 1, consumerSlot: 0, issuedAtSec: 5 },
    { brokerId: 0, queueId: 2, queueOffset: 20, attempt: 2, consumerSlot: 3, issuedAtSec: 5 },
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
