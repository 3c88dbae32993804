// Store benchmark (issue #4): append throughput with sync and async flush at 1, 16 and 256
// concurrent appenders, sequential queue reads, crash recovery of a 1 GiB log, and the yardstick
// measured in the same run: the raw disk limit (256 KiB writes each followed by fdatasync).
// `--backlog-gib N` also fills an N GiB log and reports RSS while writing and reading it back.
// `--sealed` seals every appended body and opens every read one as the broker does (crypto-
// shredding, src/broker/body-seal.ts), so append and read rows include that cost; the `seal`
// section times seal and open alone per 1 KiB body.
//   npm run bench:store [-- --seconds 3 --backlog-gib 10 --only append,read,recovery,seal --sealed]
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBody, sealAad, sealBody } from '../../src/broker/body-seal.js';
import { MessageFlags, openMessageStore } from '../../src/store/index.js';
import type { AppendMessage, FlushPolicy, MessageStore } from '../../src/store/index.js';
import { type Column, formatFixed, formatTable } from './lib/table.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const SECONDS = flag('seconds', 3);
const BACKLOG_GIB = flag('backlog-gib', 0);
const RECOVERY_GIB = flag('recovery-gib', 1);
/** `--only append,read,recovery,seal`: the sections to run (default all). */
const ONLY = new Set(
  (args.includes('--only') ? args[args.indexOf('--only') + 1] : 'append,read,recovery,seal').split(
    ',',
  ),
);
const SEALED = args.includes('--sealed');
const BODY_BYTES = 1024;
const QUEUES = 4;
const GIB = 1024 ** 3;
const root = join(
  process.env.WHARF_BENCH_DIR ?? join(tmpdir(), 'wharf-bench'),
  String(process.pid),
);

function freshDir(name: string): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

const body = Buffer.alloc(BODY_BYTES, 'wharf-');
const dataKey = randomBytes(32);
const aad = sealAad('bench-tenant', 'bench-instance');
function message(i: number): AppendMessage {
  if (SEALED) {
    return {
      topic: 'bench',
      queueId: i % QUEUES,
      tag: 'TagA',
      body: sealBody(dataKey, body, aad),
      bornTimestampMs: Date.now(),
      flags: MessageFlags.SEALED,
    };
  }
  return { topic: 'bench', queueId: i % QUEUES, tag: 'TagA', body, bornTimestampMs: Date.now() };
}

interface Timed {
  perSec: number;
  /** CPU time a call (user + system): on a shared machine steadier than wall time. */
  cpuUs: number;
}

/** Seal and open alone, single-threaded: what each published and each received body costs. */
function sealRun(seconds: number): { seal: Timed; open: Timed } {
  const timeIt = (fn: () => void): Timed => {
    let n = 0;
    const cpu = process.cpuUsage();
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      for (let i = 0; i < 256; i++) fn();
      n += 256;
    }
    const wallSec = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    return { perSec: n / wallSec, cpuUs: (used.user + used.system) / n };
  };
  const envelope = sealBody(dataKey, body, aad);
  return {
    seal: timeIt(() => void sealBody(dataKey, body, aad)),
    open: timeIt(() => {
      if (openBody(dataKey, envelope, aad) === null) throw new Error('does not open');
    }),
  };
}

function rawDiskLimit(seconds: number): { bytesPerSec: number; syncsPerSec: number } {
  const dir = freshDir('raw');
  const fd = openSync(join(dir, 'raw.dat'), 'w');
  const buf = Buffer.alloc(256 * 1024, 7);
  let pos = 0;
  let syncs = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    writeSync(fd, buf, 0, buf.length, pos);
    fdatasyncSync(fd);
    pos += buf.length;
    syncs++;
  }
  const elapsed = (performance.now() - started) / 1000;
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  return { bytesPerSec: pos / elapsed, syncsPerSec: syncs / elapsed };
}

interface AppendRun {
  policy: FlushPolicy;
  appenders: number;
  msgPerSec: number;
  mbPerSec: number;
  msgPerSync: number;
  recordBytes: number;
}

async function appendRun(
  policy: FlushPolicy,
  appenders: number,
  seconds: number,
): Promise<AppendRun> {
  const dir = freshDir(`append-${policy}-${appenders}`);
  const store = await openMessageStore({
    dir,
    flushPolicy: policy,
    segmentBytes: 256 * 1024 * 1024,
  });
  let count = 0;
  let recordBytes = 0;
  let stop = false;
  const started = performance.now();
  const before = store.stats();
  const worker = async (id: number) => {
    let i = id;
    while (!stop) {
      const [r] = await store.append([message(i)]);
      recordBytes = r.size;
      i += appenders;
      count++;
    }
  };
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(Array.from({ length: appenders }, (_, id) => worker(id)));
  clearTimeout(timer);
  const elapsed = (performance.now() - started) / 1000;
  const after = store.stats();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const syncs = after.fdatasyncs - before.fdatasyncs;
  return {
    policy,
    appenders,
    msgPerSec: count / elapsed,
    mbPerSec: (count * recordBytes) / elapsed / 1e6,
    msgPerSync: syncs > 0 ? count / syncs : Number.NaN,
    recordBytes,
  };
}

/** Bytes of the records the last fill wrote. */
let filledRecordBytes = 0;

/** Fills `bytes` of log fast (async flush, batches), calling `sample` now and then. */
async function fill(
  store: MessageStore,
  bytes: number,
  sample?: () => void,
  queues = QUEUES,
): Promise<number> {
  let written = 0;
  let count = 0;
  let nextSample = 0;
  let lastSize = 0;
  const batch = Array.from({ length: 128 }, (_, i) => ({ ...message(i), queueId: i % queues }));
  const worker = async () => {
    while (written < bytes) {
      const results = await store.append(batch);
      for (const r of results) written += r.size;
      count += results.length;
      lastSize = results[results.length - 1].size;
      if (sample !== undefined && written >= nextSample) {
        sample();
        nextSample = written + 256 * 1024 * 1024;
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  filledRecordBytes = lastSize;
  return count;
}

async function readAll(store: MessageStore, queueId: number, sample?: () => void): Promise<number> {
  let next = store.queueOffsets('bench', queueId).minQueueOffset;
  const max = store.queueOffsets('bench', queueId).maxQueueOffset;
  let count = 0;
  while (next < max) {
    const r = await store.readQueue('bench', queueId, next, { maxMessages: 256 });
    if (SEALED)
      for (const m of r.messages)
        if (openBody(dataKey, m.body, aad) === null) throw new Error('a sealed body does not open');
    count += r.messages.length;
    next = r.nextQueueOffset;
    if (sample !== undefined && (count & 0xffff) < 256) sample();
  }
  return count;
}

async function readRun(queues: number): Promise<{ msgPerSec: number; messages: number }> {
  const dir = freshDir(`read-${queues}`);
  const store = await openMessageStore({ dir, flushPolicy: 'async' });
  await fill(store, 512 * 1024 * 1024, undefined, queues);
  await store.close();
  // Reopen so nothing is in the store's own cache: reads go to the files (OS page cache).
  const again = await openMessageStore({ dir, flushPolicy: 'async' });
  const started = performance.now();
  let messages = 0;
  for (let q = 0; q < queues; q++) messages += await readAll(again, q);
  const elapsed = (performance.now() - started) / 1000;
  await again.close();
  rmSync(dir, { recursive: true, force: true });
  return { msgPerSec: messages / elapsed, messages };
}

async function recoveryRun(
  gib: number,
): Promise<{ seconds: number; records: number; lastCheckpointSeconds: number }> {
  const dir = freshDir('recovery');
  const store = await openMessageStore({ dir, flushPolicy: 'async' });
  const records = await fill(store, gib * GIB);
  await store.close();
  // A crash that left no usable checkpoint: every record is verified and re-dispatched.
  rmSync(join(dir, 'checkpoint'));
  writeFileSync(join(dir, 'abort'), 'crash');
  let started = performance.now();
  const recovered = await openMessageStore({ dir, flushPolicy: 'async' });
  const seconds = (performance.now() - started) / 1000;
  if (recovered.recovery.redispatchedRecords !== records) {
    throw new Error(`recovered ${recovered.recovery.redispatchedRecords} of ${records}`);
  }
  await recovered.close();
  // A crash with the usual checkpoint (at most one interval old).
  writeFileSync(join(dir, 'abort'), 'crash');
  started = performance.now();
  const usual = await openMessageStore({ dir, flushPolicy: 'async' });
  const lastCheckpointSeconds = (performance.now() - started) / 1000;
  await usual.close();
  rmSync(dir, { recursive: true, force: true });
  return { seconds, records, lastCheckpointSeconds };
}

async function backlogRun(gib: number): Promise<{
  writeRssMb: number;
  readRssMb: number;
  messages: number;
  writeSec: number;
  readSec: number;
}> {
  const dir = freshDir('backlog');
  let writeRss = 0;
  let readRss = 0;
  const store = await openMessageStore({ dir, flushPolicy: 'async' });
  let started = performance.now();
  const messages = await fill(
    store,
    gib * GIB,
    () => (writeRss = Math.max(writeRss, process.memoryUsage().rss)),
  );
  const writeSec = (performance.now() - started) / 1000;
  await store.close();
  const again = await openMessageStore({ dir, flushPolicy: 'async' });
  started = performance.now();
  let read = 0;
  for (let q = 0; q < QUEUES; q++) {
    read += await readAll(again, q, () => (readRss = Math.max(readRss, process.memoryUsage().rss)));
  }
  const readSec = (performance.now() - started) / 1000;
  await again.close();
  rmSync(dir, { recursive: true, force: true });
  if (read !== messages) throw new Error(`read ${read} of ${messages}`);
  return { writeRssMb: writeRss / 1e6, readRssMb: readRss / 1e6, messages, writeSec, readSec };
}

const fmt = (n: number, digits = 0) => formatFixed(n, digits);

const MEASURE_COLUMNS: Column[] = [
  { header: 'measure' },
  { header: 'msg/s', align: 'right' },
  { header: 'MB/s', align: 'right' },
  { header: 'msg per fdatasync', align: 'right' },
  { header: 'goal' },
];

async function main(): Promise<void> {
  mkdirSync(root, { recursive: true });
  try {
    console.log(
      `# Wharf store benchmark — 1 KiB bodies${SEALED ? ' sealed (AES-256-GCM) on append and opened on read' : ''}, ${SECONDS} s per append run, data in ${root}`,
    );
    // The disk is shared and noisy: measure the yardstick right before and right after each
    // sync run and take the best, so the ratio is never flattered by a slow moment.
    const rawSamples: { bytesPerSec: number; syncsPerSec: number }[] = [];
    const runs: AppendRun[] = [];
    if (ONLY.has('append')) {
      rawSamples.push(rawDiskLimit(SECONDS / 2));
      for (const policy of ['sync', 'async'] as const) {
        for (const appenders of [1, 16, 256]) {
          runs.push(await appendRun(policy, appenders, SECONDS));
          if (policy === 'sync') rawSamples.push(rawDiskLimit(SECONDS / 2));
        }
      }
    }
    const read = ONLY.has('read') ? await readRun(1) : null;
    const readInterleaved = ONLY.has('read') ? await readRun(QUEUES) : null;
    const recovery = ONLY.has('recovery') ? await recoveryRun(RECOVERY_GIB) : null;
    const seal = ONLY.has('seal') ? sealRun(Math.max(1, SECONDS / 3)) : null;
    const recordBytes = runs[0]?.recordBytes ?? filledRecordBytes;
    const anyRow = runs.length > 0 || read !== null || recovery !== null || seal !== null;
    const rows: string[][] = [];
    if (rawSamples.length > 0) {
      const raw = rawSamples.reduce((a, b) => (b.bytesPerSec > a.bytesPerSec ? b : a));
      rows.push([
        `raw disk: 256 KiB write + fdatasync (yardstick, best of ${rawSamples.length}: ${rawSamples.map((r) => fmt(r.bytesPerSec / 1e6)).join(' / ')} MB/s)`,
        `≈ ${fmt(raw.bytesPerSec / recordBytes)} (records' worth)`,
        fmt(raw.bytesPerSec / 1e6),
        '–',
        `${fmt(raw.syncsPerSec)} fdatasync/s`,
      ]);
      for (const r of runs) {
        const goal =
          r.policy === 'sync' && r.appenders === 256
            ? `≥ ${fmt(raw.bytesPerSec / 2 / 1e6)} MB/s (half raw): ratio ${fmt((r.mbPerSec * 1e6) / raw.bytesPerSec, 2)}`
            : r.policy === 'async' && r.appenders === 256
              ? '≥ 400,000 msg/s'
              : '';
        rows.push([
          `append ${r.policy} × ${r.appenders} appenders`,
          fmt(r.msgPerSec),
          fmt(r.mbPerSec),
          fmt(r.msgPerSync, 1),
          goal,
        ]);
      }
    }
    if (read !== null && readInterleaved !== null) {
      rows.push([
        `sequential queue read, 1 queue (${fmt(read.messages)} msgs, 256 per read, from files)`,
        fmt(read.msgPerSec),
        fmt((read.msgPerSec * recordBytes) / 1e6),
        '–',
        '≥ 1,000,000 msg/s',
      ]);
      rows.push([
        `sequential queue read, ${QUEUES} interleaved queues read one after the other`,
        fmt(readInterleaved.msgPerSec),
        fmt((readInterleaved.msgPerSec * recordBytes) / 1e6),
        '–',
        '',
      ]);
    }
    if (recovery !== null) {
      rows.push([
        `recovery of a ${RECOVERY_GIB} GiB log, no checkpoint (${fmt(recovery.records)} records verified + re-dispatched)`,
        '–',
        '–',
        '–',
        `${fmt(recovery.seconds, 2)} s (goal < 3 s)`,
      ]);
      rows.push([
        `recovery after a crash just after a checkpoint (verifies the last segment)`,
        '–',
        '–',
        '–',
        `${fmt(recovery.lastCheckpointSeconds, 2)} s`,
      ]);
    }
    if (seal !== null) {
      rows.push([
        'seal a 1 KiB body (AES-256-GCM, random nonce), one thread',
        fmt(seal.seal.perSec),
        fmt((seal.seal.perSec * BODY_BYTES) / 1e6),
        '–',
        `${fmt(seal.seal.cpuUs, 2)} µs CPU a message`,
      ]);
      rows.push([
        'open a sealed 1 KiB body, one thread',
        fmt(seal.open.perSec),
        fmt((seal.open.perSec * BODY_BYTES) / 1e6),
        '–',
        `${fmt(seal.open.cpuUs, 2)} µs CPU a message`,
      ]);
    }
    if (anyRow) {
      console.log('');
      console.log(formatTable(MEASURE_COLUMNS, rows));
      console.log('');
      console.log(
        `record size on disk: ${recordBytes} bytes for a 1 KiB body; MB/s counts whole records.`,
      );
    }
    if (BACKLOG_GIB > 0) {
      const backlog = await backlogRun(BACKLOG_GIB);
      const backlogRows: string[][] = [];
      backlogRows.push([
        `write ${BACKLOG_GIB} GiB`,
        fmt(backlog.messages),
        fmt(backlog.writeSec, 1),
        `${fmt(backlog.writeRssMb)} MB`,
        '< 300 MB',
      ]);
      backlogRows.push([
        `read it all back from the oldest`,
        fmt(backlog.messages),
        fmt(backlog.readSec, 1),
        `${fmt(backlog.readRssMb)} MB`,
        '< 300 MB',
      ]);
      console.log('');
      console.log(
        formatTable(
          [
            { header: 'backlog' },
            { header: 'messages', align: 'right' },
            { header: 'seconds', align: 'right' },
            { header: 'peak RSS', align: 'right' },
            { header: 'goal' },
          ],
          backlogRows,
        ),
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
