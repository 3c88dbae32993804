// The checkpoint's bytes are frozen (a change is a disk-format change), and anything that is not
// a whole, current checkpoint reads as "no checkpoint", which makes recovery rebuild from the log.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dispatcher } from '../../src/store/dispatcher.js';
import type { FileCache } from '../../src/store/file-cache.js';
import type { KeyIndex } from '../../src/store/key-index.js';
import {
  Checkpointer,
  CHECKPOINT_FILE,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from '../../src/store/checkpoint.js';

const golden = JSON.parse(
  readFileSync(new URL('../fixtures/store-formats-v1.json', import.meta.url), 'utf8'),
) as { checkpoint: { value: { dispatchedLogOffset: number; writtenAtMs: number }; hex: string } };

t.test('a checkpoint encodes to the frozen golden bytes and decodes back', async (t) => {
  t.equal(encodeCheckpoint(golden.checkpoint.value).toString('hex'), golden.checkpoint.hex);
  t.same(decodeCheckpoint(Buffer.from(golden.checkpoint.hex, 'hex')), golden.checkpoint.value);
});

t.test('a damaged, truncated or future-version checkpoint reads as none', async (t) => {
  const good = Buffer.from(golden.checkpoint.hex, 'hex');
  const flipped = Buffer.from(good);
  flipped[12] ^= 0x01;
  t.equal(decodeCheckpoint(flipped), null, 'a flipped bit fails the CRC');
  t.equal(decodeCheckpoint(good.subarray(0, 31)), null, 'a short file');
  const future = Buffer.from(good);
  future[4] = 2;
  t.equal(decodeCheckpoint(future), null, 'a version this code does not know');
  const magic = Buffer.from(good);
  magic[0] = 0;
  t.equal(decodeCheckpoint(magic), null, 'not a checkpoint');
});

t.test('writeCheckpoint replaces the file; a missing file reads as none', async (t) => {
  const dir = t.testdir({});
  t.equal(await readCheckpoint(dir), null);
  await writeCheckpoint(dir, { dispatchedLogOffset: 10, writtenAtMs: 1 });
  await writeCheckpoint(dir, { dispatchedLogOffset: 20, writtenAtMs: 2 });
  t.same(await readCheckpoint(dir), { dispatchedLogOffset: 20, writtenAtMs: 2 });
  writeFileSync(join(dir, CHECKPOINT_FILE), 'garbage');
  t.equal(await readCheckpoint(dir), null);
});

/** A Checkpointer over fakes: a dispatcher at `offset` whose written files are `dirty`, and a
 *  cache whose fdatasync of a file waits for `gate` and fails for the paths in `failing`. */
function checkpointerOver(dir: string) {
  const state = {
    offset: 100,
    dirty: [] as string[],
    failing: new Set<string>(),
    gate: Promise.resolve(),
  };
  const dispatcher = {
    get dispatchedLogOffset() {
      return state.offset;
    },
    flushQueues: async () => undefined,
    takeDirty: () => state.dirty.splice(0),
    markWritten: (paths: Iterable<string>) => state.dirty.push(...paths),
  };
  const cache = {
    with: async (path: string) => {
      await state.gate;
      if (state.failing.has(path)) {
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      }
    },
  };
  const checkpointer = new Checkpointer(
    dir,
    dispatcher as unknown as Dispatcher,
    { flush: async () => undefined } as unknown as KeyIndex,
    cache as unknown as FileCache,
  );
  return { state, checkpointer };
}

t.test(
  'a checkpoint prepared while the one before it syncs is not recorded past its failed sync',
  async (t) => {
    const dir = t.testdir({});
    const { state, checkpointer } = checkpointerOver(dir);
    let release!: () => void;
    state.gate = new Promise<void>((resolve) => (release = resolve));
    const bad = join(dir, 'a', '00000000000000000000');
    state.failing.add(bad);
    state.dirty = [bad];
    // the timer's checkpoint syncs outside the serial queue…
    const first = checkpointer.complete((await checkpointer.prepare())!);
    // …while one in the serial queue (close) prepares what was dispatched since, in another file
    state.offset = 200;
    state.dirty = [join(dir, 'b', '00000000000000000000')];
    const second = checkpointer.run();
    release();
    await t.rejects(first, { code: 'EIO' });
    await t.rejects(second, { code: 'IoError' }, 'the later one is refused too');
    t.equal(await readCheckpoint(dir), null, 'no checkpoint recorded past the failed sync');
  },
);

t.test('a checkpoint of nothing new is done once the one still syncing is recorded', async (t) => {
  const dir = t.testdir({});
  const { state, checkpointer } = checkpointerOver(dir);
  let release!: () => void;
  state.gate = new Promise<void>((resolve) => (release = resolve));
  state.dirty = [join(dir, 'a', '00000000000000000000')];
  const first = checkpointer.complete((await checkpointer.prepare())!);
  let done = false;
  const second = checkpointer.run().then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(done, false, 'not done while the checkpoint before it still syncs');
  release();
  await first;
  await second;
  t.same(await readCheckpoint(dir).then((c) => c?.dispatchedLogOffset), 100);
});
