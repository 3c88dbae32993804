import t from 'tap';
import {
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { openMessageStore } from '../../src/store/index.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/store/state-journal.js';
import { SMALL, openTestStore, storeDir } from '../helpers/store.js';

function journalSegments(dir: string): string[] {
  return readdirSync(join(dir, 'journal'))
    .filter((n) => /^\d{20}$/.test(n))
    .sort();
}

/** Three rounds of entries, each followed by a snapshot (s0, s1, s2): early segments deleted. */
async function threeSnapshots(dir: string): Promise<void> {
  const store = await openMessageStore({ ...SMALL, dir });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 30; i++) await store.journal.append([Buffer.alloc(200, i)]);
    await store.journal.writeSnapshot(Buffer.from(`s${round}`));
  }
  await store.close();
}

/** Flips a bit of the journal's snapshot (bit rot): its CRC no longer holds. Returns the path
 *  and the damaged bytes. */
function damageSnapshot(dir: string): { snap: string; bytes: Buffer } {
  const snap = join(dir, 'journal', 'snapshot');
  const bytes = readFileSync(snap);
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(snap, bytes);
  return { snap, bytes };
}

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
  const later = Array.from({ length: 50 }, (_, i) => `f${i}-`.padEnd(200, 'y'));
  for (const entry of later) await store.journal.append([Buffer.from(entry)]);
  await store.journal.writeSnapshot(Buffer.from('state@100'));
  await Promise.all([
    store.journal.append([Buffer.from('a'), Buffer.from('b')]),
    store.journal.append([Buffer.from('c')]),
  ]);
  t.ok(store.journal.bytesSinceSnapshot() > 0);
  await store.close();
  // the previous snapshot stays, with every segment from its position on; those before it go
  const previous = decodeSnapshot(readFileSync(join(dir, 'journal', 'snapshot.prev')));
  if (typeof previous === 'string') throw new Error(previous);
  t.equal(previous.data.toString(), 'state@50');
  const starts = journalSegments(dir).map(Number);
  t.ok(starts[0] > 0, 'segments before the previous snapshot deleted');
  t.ok(starts[0] <= previous.journalLogOffset, 'the segment holding its position kept');
  t.ok((starts[1] ?? Infinity) > previous.journalLogOffset);
  store = await openMessageStore({ ...SMALL, dir });
  const rec = store.journal.recover();
  t.equal(rec.snapshot?.toString(), 'state@100');
  t.same(await collect(rec.entries), ['a', 'b', 'c']);
  await store.close();

  // a damaged snapshot: the previous one and the entries after it give the same state
  damageSnapshot(dir);
  store = await openMessageStore({ ...SMALL, dir });
  const fallback = store.journal.recover();
  t.equal(fallback.snapshot?.toString(), 'state@50');
  t.same(await collect(fallback.entries), [...later, 'a', 'b', 'c']);
  t.match(readdirSync(join(dir, 'quarantine')), [/^journal-snapshot-\d+\.damaged$/]);
  await store.journal.writeSnapshot(Buffer.from('state@103'));
  await store.close();
  store = await openMessageStore({ ...SMALL, dir });
  t.equal(store.journal.recover().snapshot?.toString(), 'state@103', 'snapshots go on');
  await store.close();
});

t.test(
  'journal: a crash between the renames of a snapshot recovers from the previous one',
  async (t) => {
    const dir = storeDir(t);
    let store = await openMessageStore({ ...SMALL, dir });
    await store.journal.append([Buffer.from('one')]);
    await store.journal.writeSnapshot(Buffer.from('base'));
    await store.journal.append([Buffer.from('two')]);
    await store.close();
    // what a crash after `snapshot` became `snapshot.prev`, before the new one took its name, leaves
    renameSync(join(dir, 'journal', 'snapshot'), join(dir, 'journal', 'snapshot.prev'));
    store = await openMessageStore({ ...SMALL, dir });
    const rec = store.journal.recover();
    t.equal(rec.snapshot?.toString(), 'base');
    t.same(await collect(rec.entries), ['two']);
    await store.close();
  },
);

t.test('journal: no snapshot while the journal does not start at 0 is damage', async (t) => {
  const dir = storeDir(t);
  await threeSnapshots(dir);
  t.ok(Number(journalSegments(dir)[0]) > 0, 'early segments deleted');
  rmSync(join(dir, 'journal', 'snapshot'));
  rmSync(join(dir, 'journal', 'snapshot.prev'));
  await t.rejects(openMessageStore({ ...SMALL, dir }), { code: 'CorruptRecord' });
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

t.test('journal: limits are typed errors', async (t) => {
  const dir = storeDir(t);
  const store = await openMessageStore({ ...SMALL, dir, maxRecordBytes: 1000 });
  await t.rejects(store.journal.append([Buffer.alloc(2000)]), { code: 'RecordTooLarge' });
  await store.journal.writeSnapshot(Buffer.from('s'));
  await store.close();
  await t.rejects(store.journal.append([Buffer.from('x')]), { code: 'StoreClosed' });
});

t.test(
  'journal: a damaged first snapshot (no previous one) is rebuilt from the whole journal',
  async (t) => {
    const dir = storeDir(t);
    let store = await openMessageStore({ ...SMALL, dir });
    await store.journal.append([Buffer.from('one'), Buffer.from('two')]);
    await store.journal.writeSnapshot(Buffer.from('state@2'));
    await store.journal.append([Buffer.from('three')]);
    await store.close();
    damageSnapshot(dir);
    // before, every start stopped here: a crash loop under a supervisor
    store = await openMessageStore({ ...SMALL, dir });
    const rec = store.journal.recover();
    t.equal(rec.snapshot, null, 'no snapshot to start from');
    t.same(await collect(rec.entries), ['one', 'two', 'three'], 'every entry, from the first');
    t.match(readdirSync(join(dir, 'quarantine')), [/^journal-snapshot-\d+\.damaged$/]);
    await store.close();
  },
);

t.test(
  'journal: a damaged snapshot, none before it and early entries gone is damage',
  async (t) => {
    const dir = storeDir(t);
    await threeSnapshots(dir);
    t.ok(Number(journalSegments(dir)[0]) > 0, 'early segments deleted');
    rmSync(join(dir, 'journal', 'snapshot.prev'));
    const { snap, bytes } = damageSnapshot(dir);
    await t.rejects(openMessageStore({ ...SMALL, dir }), {
      code: 'CorruptRecord',
      message: /journal snapshot unreadable \(snapshot CRC mismatch\)/,
    });
    t.ok(readFileSync(snap).equals(bytes), 'the snapshot left where it was');
  },
);

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

t.test('journal: a previous snapshot whose entries are gone is damage, not a base', async (t) => {
  const dir = storeDir(t);
  await threeSnapshots(dir);
  // what an earlier version leaves: segments deleted up to its own snapshot, beside a stale
  // snapshot.prev; then that snapshot lost
  const current = decodeSnapshot(readFileSync(join(dir, 'journal', 'snapshot')));
  if (typeof current === 'string') throw new Error(current);
  const starts = journalSegments(dir).map(Number);
  for (let i = 0; i + 1 < starts.length && starts[i + 1] <= current.journalLogOffset; i++)
    rmSync(join(dir, 'journal', journalSegments(dir)[0]));
  rmSync(join(dir, 'journal', 'snapshot'));
  await t.rejects(openMessageStore({ ...SMALL, dir }), { code: 'CorruptRecord' });
});
