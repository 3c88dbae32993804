// Fault child for defect 2 of #8: consume-queue writes fail (ENOSPC injected into fs.writev and
// fs.writevSync — small writes are made inline — for descriptors of consumequeue/ files, in this
// process only) while the commit log works. It
// appends a batch (acknowledged: durable in the log), runs a checkpoint (which must fail), then,
// in mode `heal`, lets writes succeed again and runs another checkpoint; in mode `failing` the
// writes keep failing. Lines on stdout:
//   A <queueOffset> <body>   an acknowledged message     CP1 ok|failed   CP2 ok|failed   DONE
// The parent SIGKILLs it after DONE and reopens the store.
import fs from 'node:fs';
import { openMessageStore } from '../../src/store/index.js';

const [dir, mode] = process.argv.slice(2) as [string, 'heal' | 'failing'];
const cqFds = new Set<number>();
let failing = false;

type OpenCallback = (err: NodeJS.ErrnoException | null, fd: number) => void;
type WritevCallback = (err: NodeJS.ErrnoException | null, bytes: number, bufs: unknown) => void;
const realOpen = fs.open.bind(fs) as (p: string, f: number, m: number, cb: OpenCallback) => void;
const realWritev = fs.writev.bind(fs) as (
  fd: number,
  b: NodeJS.ArrayBufferView[],
  p: number,
  cb: WritevCallback,
) => void;
const realWritevSync = fs.writevSync.bind(fs);
function noSpace(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device, write');
  err.code = 'ENOSPC';
  err.errno = -28;
  return err;
}
(fs as { open: unknown }).open = (path: string, flags: number, mode: number, cb: OpenCallback) =>
  realOpen(path, flags, mode, (err, fd) => {
    if (err === null && String(path).includes('/consumequeue/')) cqFds.add(fd);
    cb(err, fd);
  });
(fs as { writev: unknown }).writev = (
  fd: number,
  buffers: NodeJS.ArrayBufferView[],
  position: number,
  cb: WritevCallback,
) => {
  if (failing && cqFds.has(fd)) {
    const err = noSpace();
    setImmediate(() => cb(err, 0, buffers));
    return;
  }
  realWritev(fd, buffers, position, cb);
};
(fs as { writevSync: unknown }).writevSync = (
  fd: number,
  buffers: NodeJS.ArrayBufferView[],
  position?: number,
) => {
  if (failing && cqFds.has(fd)) throw noSpace();
  return realWritevSync(fd, buffers, position);
};

const store = await openMessageStore({
  dir,
  minFreeDiskBytes: 0,
  checkpointIntervalMs: 3_600_000,
  segmentBytes: 1024 * 1024,
  consumeQueueSegmentEntries: 64,
});
const hooks = store as unknown as { runCheckpoint(): Promise<void> };
const outcome = (p: Promise<void>) =>
  p.then(
    () => 'ok',
    () => 'failed',
  );

failing = true;
// More than the tail holds (straight to the file) and across consume-queue files.
const batch = Array.from({ length: 300 }, (_, i) => ({
  topic: 'cq-fault',
  queueId: 0,
  body: Buffer.from(`m-${i}-${'x'.repeat(i % 97)}`),
  bornTimestampMs: Date.now(),
}));
const results = await store.append(batch);
let out = '';
for (let i = 0; i < results.length; i++)
  out += `A ${results[i].queueOffset} ${batch[i].body.toString()}\n`;
process.stdout.write(out);
process.stdout.write(`CP1 ${await outcome(hooks.runCheckpoint())}\n`);
if (mode === 'heal') failing = false;
process.stdout.write(`CP2 ${await outcome(hooks.runCheckpoint())}\n`);
// Reads are served (from memory) whatever the disk did.
const read = await store.readQueue('cq-fault', 0, 0, { maxMessages: 1000 });
process.stdout.write(`READ ${read.messages.length}\nDONE\n`);
