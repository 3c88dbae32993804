// CommitLog.append, the one way frames get into a log: placement, encoding into staging buffers
// (one per run of frames in a segment), a roll's blank frame between runs, one request per call.
import t from 'tap';
import type { Test } from 'tap';
import { CommitLog, type FrameWriter } from '../../../src/store/commit-log.js';
import { FileCache } from '../../../src/store/file-cache.js';
import type { CommitRequest } from '../../../src/store/group-commit.js';
import { encodeJournalEntry, FRAME_HEADER_BYTES } from '../../../src/store/record.js';

/** Writes journal frames whose payload is the frame's index byte. */
class IndexWriter implements FrameWriter {
  calls: [index: number, pos: number, size: number, logOffset: number][] = [];
  writeFrame(index: number, buffer: Buffer, pos: number, size: number, logOffset: number): void {
    this.calls.push([index, pos, size, logOffset]);
    encodeJournalEntry(buffer, pos, logOffset, Buffer.alloc(size - FRAME_HEADER_BYTES, index));
  }
}

async function open(t: Test, dir: string, segmentBytes: number) {
  const cache = new FileCache(8);
  const frames: [number, number, Buffer][] = [];
  const { log } = await CommitLog.open<CommitRequest>({
    name: 'test log',
    dir,
    segmentBytes,
    cache,
    flushPolicy: 'sync',
    asyncFlushIntervalMs: 1000,
    maxPendingBytes: 1 << 20,
    fromLogOffset: 0,
    onFrame: (buf, pos, length, logOffset) => {
      frames.push([logOffset, length, Buffer.from(buf.subarray(pos, pos + length))]);
    },
  });
  t.teardown(async () => {
    await log.close();
    await cache.closeAll();
  });
  return { log, frames };
}

function submit(log: CommitLog, sizes: number[], writer: FrameWriter) {
  const request: CommitRequest = {
    chunks: [],
    bytes: sizes.reduce((a, b) => a + b, 0),
    done: () => undefined,
  };
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  request.done = (err) => {
    if (err !== null) throw err;
    resolve();
  };
  log.checkAccept(request.bytes);
  log.append(request, sizes, sizes.length, writer);
  return { request, done };
}

t.test('one append of many frames is one chunk in one staging buffer', async (t) => {
  const { log } = await open(t, t.testdir(), 4096);
  const writer = new IndexWriter();
  const { request, done } = submit(log, [100, 50, 70], writer);
  t.same(writer.calls, [
    [0, 0, 100, 0],
    [1, 100, 50, 100],
    [2, 150, 70, 150],
  ]);
  t.equal(request.chunks.length, 1);
  t.equal(request.chunks[0].logOffset, 0);
  t.equal(request.chunks[0].buffer.length, 220);
  await done;
  t.equal(log.endLogOffset, 220);
  t.equal(log.groupCommit.writtenLogOffset, 220);
});

t.test('consecutive appends sit side by side in one staging buffer', async (t) => {
  const { log } = await open(t, t.testdir(), 4096);
  const a = submit(log, [64], new IndexWriter());
  const b = submit(log, [32], new IndexWriter());
  const x = a.request.chunks[0].buffer;
  const y = b.request.chunks[0].buffer;
  t.equal(x.buffer, y.buffer, 'one slab');
  t.equal(x.byteOffset + x.length, y.byteOffset, 'adjacent');
  await Promise.all([a.done, b.done]);
});

t.test('a roll inside an append puts the blank frame between the two runs', async (t) => {
  const dir = t.testdir();
  const { log } = await open(t, dir, 256);
  await submit(log, [100], new IndexWriter()).done;
  const writer = new IndexWriter();
  const { request, done } = submit(log, [60, 80, 40, 30], writer);
  t.same(
    request.chunks.map((c) => [c.logOffset, c.buffer.length, c.segment.startLogOffset]),
    [
      [100, 60, 0],
      [160, 20, 0],
      [256, 150, 256],
    ],
    'run in the first segment, its blank frame, run in the next',
  );
  t.same(
    writer.calls.map((c) => c[3]),
    [100, 256, 336, 376],
    'each frame encoded where it was placed',
  );
  await done;
  await log.close();
  // Read back through recovery: every frame, in order, with its own payload.
  const again = await open(t, dir, 256);
  t.same(
    again.frames.map(([logOffset, length, buf]) => [logOffset, length, buf[FRAME_HEADER_BYTES]]),
    [
      [0, 100, 0],
      [100, 60, 0],
      [256, 80, 1],
      [336, 40, 2],
      [376, 30, 3],
    ],
  );
  t.equal(again.log.endLogOffset, 406);
});

t.test('an append whose first frame rolls starts with the blank frame', async (t) => {
  const { log } = await open(t, t.testdir(), 256);
  await submit(log, [200], new IndexWriter()).done;
  const { request, done } = submit(log, [100], new IndexWriter());
  t.same(
    request.chunks.map((c) => [c.logOffset, c.buffer.length]),
    [
      [200, FRAME_HEADER_BYTES],
      [256, 100],
    ],
  );
  await done;
});

t.test('a frame too large for staging gets a buffer of its own', async (t) => {
  const { log } = await open(t, t.testdir(), 1 << 20);
  const small = submit(log, [100], new IndexWriter());
  const big = submit(log, [300 * 1024], new IndexWriter());
  t.not(big.request.chunks[0].buffer.buffer, small.request.chunks[0].buffer.buffer);
  t.equal(big.request.chunks[0].buffer.length, 300 * 1024);
  await Promise.all([small.done, big.done]);
});

t.test('checkAccept refuses before anything is placed', async (t) => {
  const { log } = await open(t, t.testdir(), 4096);
  await log.close();
  t.throws(() => log.checkAccept(10), { code: 'StoreClosed' });
  t.equal(log.endLogOffset, 0);
});
