// The sealed-body envelope and the data-key cache: golden bytes freeze envelope v1 and a v1 record
// carrying one (MessageFlags.SEALED), also written in place (a thread's packed batch); an
// envelope opens only under its key and instance, and nothing cut, flipped or unknown ever
// opens; a forgotten key stays forgotten.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  SEAL_OVERHEAD_BYTES,
  openBody,
  sealAad,
  sealBody,
  sealBodyInto,
} from '../../src/broker/body-seal.js';
import { BodyKeys, type DataKeySource } from '../../src/broker/body-keys.js';
import { OpenedBodies } from '../../src/broker/opened-bodies.js';
import { decodeMessage, encodeMessage, measureMessage } from '../../src/store/record.js';
import { MessageFlags, type AppendMessage, type StoredMessage } from '../../src/store/index.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/sealed-body-v1.json', import.meta.url), 'utf8'),
) as {
  keyHex: string;
  nonceHex: string;
  tenantId: string;
  instanceId: string;
  plaintext: string;
  envelopeHex: string;
  record: {
    message: Omit<AppendMessage, 'body'>;
    position: { logOffset: number; queueOffset: number; storeTimestampMs: number };
    hex: string;
  };
};
const key = Buffer.from(golden.keyHex, 'hex');
const aad = sealAad(golden.tenantId, golden.instanceId);
const envelope = Buffer.from(golden.envelopeHex, 'hex');

t.test('a body seals to the frozen envelope bytes and opens back', async (t) => {
  const sealed = sealBody(
    key,
    Buffer.from(golden.plaintext),
    aad,
    Buffer.from(golden.nonceHex, 'hex'),
  );
  t.equal(sealed.toString('hex'), golden.envelopeHex);
  t.equal(sealed.length, Buffer.byteLength(golden.plaintext) + SEAL_OVERHEAD_BYTES);
  t.equal(openBody(key, envelope, aad)?.toString(), golden.plaintext);
});

t.test('an envelope written in place is the frozen envelope v1', async (t) => {
  const plaintext = Buffer.from(golden.plaintext);
  const out = Buffer.alloc(7 + plaintext.length + SEAL_OVERHEAD_BYTES + 5, 0xaa);
  const written = sealBodyInto(key, plaintext, aad, out, 7, Buffer.from(golden.nonceHex, 'hex'));
  t.equal(written, plaintext.length + SEAL_OVERHEAD_BYTES);
  t.equal(out.subarray(7, 7 + written).toString('hex'), golden.envelopeHex);
  t.equal(out[6], 0xaa, 'nothing written before');
  t.equal(out[7 + written], 0xaa, 'nothing written after');
  t.throws(() => sealBodyInto(key, plaintext, aad, out, out.length - 3), RangeError);
});

t.test('a v1 record carrying a sealed body encodes to its golden bytes and decodes', async (t) => {
  const message: AppendMessage = { ...golden.record.message, body: envelope };
  const size = measureMessage(message);
  if (typeof size === 'string') throw new Error(size);
  const buf = Buffer.alloc(size);
  encodeMessage(buf, 0, size, message, golden.record.position);
  t.equal(buf.toString('hex'), golden.record.hex);
  const decoded = decodeMessage(buf, 0, buf.length, golden.record.position.logOffset);
  if (decoded.status !== 'ok') throw new Error(decoded.status);
  t.equal(
    decoded.value.flags & MessageFlags.SEALED,
    MessageFlags.SEALED,
    'the SEALED flag is kept',
  );
  t.equal(openBody(key, decoded.value.body, aad)?.toString(), golden.plaintext);
});

t.test(
  'an envelope does not open under another key, another instance, or cut or flipped',
  async (t) => {
    t.equal(openBody(Buffer.alloc(32, 9), envelope, aad), null, 'another key');
    t.equal(
      openBody(key, envelope, sealAad(golden.tenantId, 'in_other')),
      null,
      'another instance',
    );
    t.equal(
      openBody(key, envelope, sealAad('tn_other', golden.instanceId)),
      null,
      'another tenant',
    );
    let opened = 0;
    for (let n = 0; n < envelope.length; n++)
      if (openBody(key, envelope.subarray(0, n), aad) !== null) opened++;
    t.equal(opened, 0, 'no truncation opens');
    for (let i = 0; i < envelope.length; i++) {
      const flipped = Buffer.from(envelope);
      flipped[i] ^= 0x01;
      if (openBody(key, flipped, aad) !== null) opened++;
    }
    t.equal(opened, 0, 'no single flipped bit opens (version, nonce, ciphertext, tag)');
    const v2 = Buffer.from(envelope);
    v2[0] = 2;
    t.equal(openBody(key, v2, aad), null, 'an unknown version does not open');
  },
);

t.test('nonces are random: one body sealed twice gives two envelopes, both open', async (t) => {
  const body = Buffer.alloc(1024, 7);
  const a = sealBody(key, body, aad);
  const b = sealBody(key, body, aad);
  t.not(a.toString('hex'), b.toString('hex'));
  t.same(openBody(key, a, aad), body);
  t.same(openBody(key, b, aad), body);
  t.same(openBody(key, sealBody(key, Buffer.alloc(0), aad), aad), Buffer.alloc(0), 'empty body');
});

function stored(topic: string, body: Buffer, flags: number): StoredMessage {
  return {
    topic,
    queueId: 0,
    queueOffset: 0,
    logOffset: 0,
    size: 0,
    storeTimestampMs: 0,
    bornTimestampMs: 0,
    flags,
    attempt: 0,
    tag: '',
    keys: [],
    properties: {},
    body,
  };
}

/** A key source in memory, to drive the cache (the Redis one is tested end to end). */
function memorySource(): DataKeySource & { keys: Map<string, Buffer>; gate?: Promise<void> } {
  const source = {
    keys: new Map<string, Buffer>(),
    gate: undefined as Promise<void> | undefined,
    async load(tenantId: string, instanceId: string, create: boolean) {
      await source.gate;
      const id = `${tenantId}/${instanceId}`;
      if (create && !source.keys.has(id))
        source.keys.set(id, Buffer.alloc(32, source.keys.size + 1));
      return source.keys.get(id) ?? null;
    },
  };
  return source;
}

t.test(
  'bodies of a forgotten instance no longer open, and a read does not make a key',
  async (t) => {
    const source = memorySource();
    const keys = new BodyKeys(source);
    const [sealed] = (await keys.seal('tn', 'in', [Buffer.from('secret')]))!.envelopes;
    const record = stored('tn/in/orders', sealed, MessageFlags.SEALED);
    t.equal(keys.open(record)?.toString(), 'secret');
    t.equal(
      keys.open(stored('tn/in/orders', Buffer.from('plain'), 0))?.toString(),
      'plain',
      'unsealed records as stored',
    );
    source.keys.delete('tn/in'); // deleted in Redis
    keys.forget('tn', 'in'); // then the broker is told
    t.equal(keys.open(record), null, 'forgotten: fails closed');
    await keys.ready('tn', 'in');
    t.equal(keys.open(record), null, 'a read loads no key: none exists');
    t.equal(source.keys.size, 0, 'and makes none');
    const restarted = new BodyKeys(source);
    await restarted.ready('tn', 'in');
    t.equal(restarted.open(record), null, 'a fresh cache (a restart) cannot open it either');
  },
);

t.test(
  'a batch read loads an instance key only for its sealed records, once (an empty receive asks the source nothing)',
  async (t) => {
    const source = memorySource();
    const [sealed] = (await new BodyKeys(source).seal('tn', 'in', [Buffer.from('secret')]))!
      .envelopes;
    let loads = 0;
    const counting: DataKeySource = {
      load: (tenantId, instanceId, create) => {
        loads++;
        return source.load(tenantId, instanceId, create);
      },
    };
    const keys = new BodyKeys(counting); // a broker started again: no key loaded
    t.same(await keys.openAll([]), [], 'nothing read');
    const plain = stored('tn/in/orders', Buffer.from('plain'), 0);
    t.same(
      (await keys.openAll([plain])).map((body) => body?.toString()),
      ['plain'],
      'plain records as stored',
    );
    t.equal(loads, 0, 'neither asked for the key');
    const record = stored('tn/in/orders', sealed, MessageFlags.SEALED);
    t.same(
      (await keys.openAll([record, plain, record])).map((body) => body?.toString()),
      ['secret', 'plain', 'secret'],
      'sealed records open with the key loaded on the way',
    );
    await keys.openAll([record]);
    t.equal(loads, 1, 'loaded once, then cached');
    const other = stored('tn/gone/orders', sealed, MessageFlags.SEALED);
    t.same(await keys.openAll([other]), [null], 'an instance with no key fails closed');
    t.equal(source.keys.has('tn/gone'), false, 'and a read made it none');
  },
);

t.test('a key load that started before a forget is not cached', async (t) => {
  const source = memorySource();
  const keys = new BodyKeys(source);
  const [sealed] = (await keys.seal('tn', 'in', [Buffer.from('secret')]))!.envelopes;
  const record = stored('tn/in/orders', sealed, MessageFlags.SEALED);
  const cold = new BodyKeys(source);
  let release!: () => void;
  source.gate = new Promise<void>((resolve) => (release = resolve));
  const loading = cold.ready('tn', 'in'); // reads the key before the deletion lands
  cold.forget('tn', 'in');
  release();
  await loading;
  t.equal(cold.open(record), null, 'the stale load did not bring the key back');
});

t.test(
  'a publish to an instance its source has no key for fails instead of storing plain',
  async (t) => {
    const keys = new BodyKeys({ load: () => Promise.resolve(null) });
    await t.rejects(keys.seal('tn', 'gone', [Buffer.from('x')]), { code: 'InstanceNotFound' });
  },
);

t.test('without a key source bodies are stored as they are', async (t) => {
  const keys = new BodyKeys(null);
  t.equal(keys.enabled, false);
  t.equal(await keys.seal('tn', 'in', [Buffer.from('x')]), null);
});

t.test('the cache of opened bodies', async (t) => {
  const at = (topic: string, body: Buffer, logOffset: number): StoredMessage => ({
    ...stored(topic, body, MessageFlags.SEALED),
    logOffset,
  });

  t.test('serves what was stored, not a tampered or moved envelope', async (t) => {
    const keys = new BodyKeys(memorySource(), 1024 * 1024);
    const plain = Buffer.from('secret body');
    const [sealed] = (await keys.seal('tn', 'in', [plain]))!.envelopes;
    keys.stored('tn', 'in', [4096], [sealed], [plain]);
    plain.fill(0); // the caller's buffer is reused: the cache kept a copy
    t.equal(keys.open(at('tn/in/orders', sealed, 4096))?.toString(), 'secret body');
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    t.equal(
      keys.open(at('tn/in/orders', flipped, 8192)),
      null,
      'another offset is opened, and a flipped tag fails',
    );
    t.equal(
      keys.open(at('tn/other/orders', sealed, 4096)),
      null,
      "another instance's record at the offset does not get the plaintext (nor its key)",
    );
  });

  t.test('a forgotten instance loses its cached plaintexts with its key', async (t) => {
    const source = memorySource();
    const keys = new BodyKeys(source, 1024 * 1024);
    const plain = [Buffer.from('a'), Buffer.from('b')];
    const [first] = (await keys.seal('tn', 'in', [plain[0]]))!.envelopes;
    const [second] = (await keys.seal('tn', 'kept', [plain[1]]))!.envelopes;
    keys.stored('tn', 'in', [100], [first], [plain[0]]);
    keys.stored('tn', 'kept', [200], [second], [plain[1]]);
    keys.forget('tn', 'in');
    source.keys.set('tn/in', Buffer.alloc(32, 9)); // even were a key found again
    await keys.ready('tn', 'in');
    t.equal(keys.open(at('tn/in/orders', first, 100)), null, 'shredded');
    t.equal(keys.open(at('tn/kept/orders', second, 200))?.toString(), 'b', 'others stay');
  });

  t.test('is bounded by bytes, oldest first, and skips large bodies', async (t) => {
    const keys = new BodyKeys(memorySource(), 256 * 1024);
    await keys.ready('tn', 'in');
    await keys.seal('tn', 'in', []); // makes the key: a record of the instance can be opened
    // envelopes that do not open: a plaintext comes back only from the cache
    const fake = Buffer.alloc(1024 + SEAL_OVERHEAD_BYTES, 1);
    fake[0] = 1;
    const body = (i: number): Buffer => Buffer.alloc(1024, i % 251);
    const count = 400;
    // records of 1 KiB bodies, one after another in the log (a record's own bytes and some)
    const step = 1152;
    for (let i = 0; i < count; i++) keys.stored('tn', 'in', [i * step], [fake], [body(i)]);
    const hits: number[] = [];
    for (let i = 0; i < count; i++) {
      const got = keys.open(at('tn/in/q', fake, i * step));
      if (got === null) continue;
      t.same(got, body(i), `offset ${i * step} is its own body`);
      hits.push(i);
    }
    t.ok(
      hits.length >= 200 && hits.length <= 250,
      `256 KiB (ring and index) holds about 220 bodies of 1 KiB: ${hits.length}`,
    );
    t.same(
      hits,
      Array.from({ length: hits.length }, (_, i) => count - hits.length + i),
      'the newest',
    );
    const big = Buffer.alloc(128 * 1024, 2);
    keys.stored('tn', 'in', [9_999_999], [fake], [big]);
    t.equal(keys.open(at('tn/in/q', fake, 9_999_999)), null, 'a 128 KiB body is not kept');
  });

  t.test('wraps around its ring under mixed sizes without ever mixing bodies', async (t) => {
    const cache = new OpenedBodies(200_000);
    const sizes = [0, 1, 7, 8, 9, 100, 1000, 4096, 65_536, 30_000];
    const bodyOf = (i: number): Buffer => Buffer.alloc(sizes[i % sizes.length], (i * 7) % 256);
    let present = 0;
    for (let i = 0; i < 3000; i++) {
      cache.add(i, 'tn/in', i + 29, bodyOf(i));
      if (i % 97 === 0) t.same(cache.get(i, 'tn/in', i + 29), bodyOf(i), `offset ${i} just added`);
      if (i % 500 === 499) {
        present = 0;
        for (let j = 0; j <= i; j++) {
          const got = cache.get(j, 'tn/in', j + 29);
          if (got === undefined) continue;
          present += got.length + 24;
          if (!got.equals(bodyOf(j))) t.fail(`offset ${j} came back with another body`);
        }
        t.ok(present <= 200_000, `at ${i}: ${present} bytes held, within the ring`);
      }
    }
    t.equal(cache.get(2999, 'tn/other', 2999 + 29), undefined, 'another instance: no');
    t.equal(cache.get(2999, 'tn/in', 1), undefined, 'another envelope length: no');
    cache.forget();
    t.equal(cache.get(2999, 'tn/in', 2999 + 29), undefined, 'forgotten');
  });
});
