import t from 'tap';
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openMessageStore } from '../../src/store/index.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/store/state-journal.js';
import { SMALL, openTestStore, storeDir } from '../helpers/store.js';

async function collect(it: AsyncIterable<Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const b of it) out.push(b.toString());
  return out;
}

t.test('journal: entries replay after a restart, snapshot becomes the base', async (t) => {
  const dir = storeDir(t);
  let store = await openMessageStore({ ...SMALL, dir });
  t.same(store.journal.recover().snapshot, null);
  t.same(await collect(store.journal.recover().entries), []);
  for (let i = 0; i < 50; i++) await store.journal.append([Buffer.from(`e${i}-`.padEnd(200, 'x'))]);
  await store.journal.append([]);
  t.ok(readdirSync(join(dir, 'journal')).length > 2, 'journal rolled segments');
  await store.journal.writeSnapshot(Buffer.from('state@50'));
  t.equal(store.journal.bytesSinceSnapshot(), 0);
  await Promise.all([
    store.journal.append([Buffer.from('a'), Buffer.from('b')]),
    store.journal.append([Buffer.from('c')]),
  ]);
  t.ok(store.journal.bytesSinceSnapshot() > 0);
  await store.close();
  const segments = readdirSync(join(dir, 'journal')).filter((n) => /^\d{20}$/.test(n));
  t.ok(segments.length <= 2, 'segments before the snapshot deleted');
  store = await openMessageStore({ ...SMALL, dir });
  const rec = store.journal.recover();
  t.equal(rec.snapshot?.toString(), 'state@50');
  t.same(await collect(rec.entries), ['a', 'b', 'c']);
  await store.close();
});

t.test('journal: a torn tail is cut, earlier entries kept', async (t) => {
  const dir = storeDir(t);
  const store = await openMessageStore({ ...SMALL, dir });
  for (let i = 0; i < 5; i++) await store.journal.append([Buffer.from(`entry-${i}`)]);
  await store.close();
  const files = readdirSync(join(dir, 'journal'))
    .filter((n) => /^\d{20}$/.test(n))
    .sort();
  const last = join(dir, 'journal', files[files.length - 1]);
  truncateSync(last, statSync(last).size - 3);
  const again = await openTestStore(t, dir);
  t.same(await collect(again.journal.recover().entries), [
    'entry-0',
    'entry-1',
    'entry-2',
    'entry-3',
  ]);
  await again.journal.append([Buffer.from('next')]);
  t.same(await collect(again.journal.recover().entries), [
    'entry-0',
    'entry-1',
    'entry-2',
    'entry-3',
    'next',
  ]);
});

t.test('journal: limits and a damaged snapshot are typed errors', async (t) => {
  const dir = storeDir(t);
  const store = await openMessageStore({ ...SMALL, dir, maxRecordBytes: 1000 });
  await t.rejects(store.journal.append([Buffer.alloc(2000)]), { code: 'RecordTooLarge' });
  await store.journal.writeSnapshot(Buffer.from('s'));
  await store.close();
  await t.rejects(store.journal.append([Buffer.from('x')]), { code: 'StoreClosed' });
  const snap = join(dir, 'journal', 'snapshot');
  const bytes = readFileSync(snap);
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(snap, bytes);
  await t.rejects(openMessageStore({ ...SMALL, dir }), { code: 'CorruptRecord' });
});

t.test('snapshot codec round-trips and rejects damage', async (t) => {
  const enc = encodeSnapshot(1234, Buffer.from('hello'));
  t.same(decodeSnapshot(enc), { journalLogOffset: 1234, data: Buffer.from('hello') });
  t.type(decodeSnapshot(Buffer.alloc(3)), 'string');
  const v2 = Buffer.from(enc);
  v2[4] = 2;
  t.type(decodeSnapshot(v2), 'string');
  t.type(decodeSnapshot(enc.subarray(0, enc.length - 1)), 'string');
});

t.test('journal: a snapshot does not wait for the journal to go idle', async (t) => {
  const store = await openTestStore(t, storeDir(t));
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) await store.journal.append([Buffer.from(`busy-${i}`)]);
  })();
  const writers = [writer, writer.then(() => undefined)];
  await new Promise((r) => setTimeout(r, 5));
  await store.journal.writeSnapshot(Buffer.from('mid-flight'));
  stop = true;
  await Promise.all(writers);
  t.equal(store.journal.recover().snapshot?.toString(), 'mid-flight');
});

t.test('journal: a snapshot ahead of a shortened journal is where appends continue', async (t) => {
  const dir = storeDir(t);
  let store = await openMessageStore({ ...SMALL, dir, journalSegmentBytes: 1 << 20 });
  await store.journal.append([Buffer.from('one'), Buffer.from('two')]);
  await store.journal.writeSnapshot(Buffer.from('base'));
  await store.close();
  const files = readdirSync(join(dir, 'journal')).filter((n) => /^\d{20}$/.test(n));
  truncateSync(join(dir, 'journal', files[0]), 10);
  store = await openMessageStore({ ...SMALL, dir, journalSegmentBytes: 1 << 20 });
  t.equal(store.journal.bytesSinceSnapshot(), 0);
  await store.journal.append([Buffer.from('after')]);
  await store.journal.writeSnapshot(Buffer.from('base2'));
  await store.journal.append([Buffer.from('later')]);
  await store.close();
  store = await openMessageStore({ ...SMALL, dir, journalSegmentBytes: 1 << 20 });
  const rec = store.journal.recover();
  t.equal(rec.snapshot?.toString(), 'base2');
  t.same(await collect(rec.entries), ['later']);
  await store.close();
});
