import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileCache } from '../../../src/store/file-cache.js';
import {
  GroupCommit,
  type CommitRequest,
  type GroupCommitOptions,
} from '../../../src/store/group-commit.js';
import { SegmentList, type LogChunk } from '../../../src/store/segment-list.js';
import { waitFor } from '../../helpers/wait-for.js';

/** A FileCache that records every operation and can fail the n-th fdatasync. */
class SpyCache extends FileCache {
  events: string[] = [];
  failSyncAt = -1;
  private syncs = 0;
  override async with<T>(path: string, fn: (fd: number) => Promise<T>, create = true): Promise<T> {
    return super.with(
      path,
      async (fd) => {
        const source = fn.toString();
        const kind = source.includes('fdatasync')
          ? 'sync'
          : source.includes('pwritev')
            ? 'write'
            : 'op';
        if (kind === 'sync' && this.syncs++ === this.failSyncAt) throw new Error('EIO (injected)');
        const result = await fn(fd);
        this.events.push(kind);
        return result;
      },
      create,
    );
  }
}

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-gc-'));
  const cache = new SpyCache(8);
  t.teardown(async () => {
    await cache.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const list = new SegmentList(dir, 4096);
  const request = (bytes: number, done: (err: Error | null) => void): CommitRequest => {
    const chunks: LogChunk[] = [];
    const placed = list.place(bytes, chunks);
    chunks.push({
      logOffset: placed.logOffset,
      segment: placed.segment,
      buffer: Buffer.alloc(bytes, 1),
    });
    return { chunks, bytes, done };
  };
  return { dir, cache, list, request };
}

/** A GroupCommit over `cache` with the tests' defaults (sync flush, 1 MiB pending). */
function groupCommit(cache: FileCache, options: Partial<GroupCommitOptions> = {}): GroupCommit {
  return new GroupCommit(
    {
      name: 'test',
      cache,
      flushPolicy: 'sync',
      asyncFlushIntervalMs: 10,
      maxPendingBytes: 1 << 20,
      ...options,
    },
    0,
  );
}

t.test('append resolves after write and fdatasync, and after the round hook', async (t) => {
  const { cache, request } = setup(t);
  const gc = groupCommit(cache, {
    afterDurable: async () => {
      cache.events.push('dispatch');
    },
  });
  const done: Promise<void>[] = [];
  for (let i = 0; i < 10; i++) {
    done.push(
      new Promise((resolve, reject) =>
        gc.submit(
          request(100, (err) => {
            cache.events.push('ack');
            return err ? reject(err) : resolve();
          }),
        ),
      ),
    );
  }
  await Promise.all(done);
  const firstAck = cache.events.indexOf('ack');
  t.ok(cache.events.indexOf('write') < cache.events.indexOf('sync'), 'write before fdatasync');
  t.ok(cache.events.lastIndexOf('sync', firstAck) < firstAck, 'ack after fdatasync');
  t.ok(cache.events.indexOf('dispatch') < firstAck, 'dispatch before ack');
  t.ok(gc.rounds <= 2, 'ten appends, at most two rounds');
  t.equal(gc.syncs, gc.rounds);
  t.equal(gc.pendingBytes, 0);
  await gc.close();
  t.throws(() => gc.checkAccept(1), { code: 'StoreClosed' });
});

t.test('a failed fdatasync fails the store: nothing more is acked or written', async (t) => {
  const { cache, request } = setup(t);
  cache.failSyncAt = 0;
  const gc = groupCommit(cache);
  const outcomes = await Promise.allSettled(
    Array.from(
      { length: 5 },
      () => new Promise<void>((res, rej) => gc.submit(request(100, (e) => (e ? rej(e) : res())))),
    ),
  );
  t.ok(outcomes.every((o) => o.status === 'rejected'));
  t.match((outcomes[0] as PromiseRejectedResult).reason, { code: 'IoError' });
  t.ok(gc.failed);
  t.throws(() => gc.checkAccept(1), { code: 'StoreClosed' });
  await gc.close();
});

t.test('async policy acks after the write and syncs on the interval', async (t) => {
  const { cache, request } = setup(t);
  const gc = groupCommit(cache, { flushPolicy: 'async', asyncFlushIntervalMs: 5 });
  gc.start();
  await new Promise<void>((res, rej) => gc.submit(request(100, (e) => (e ? rej(e) : res()))));
  t.equal(gc.syncedLogOffset, 0, 'acked before any fdatasync');
  for (let i = 0; i < 100 && gc.syncedLogOffset === 0; i++)
    await new Promise((r) => setTimeout(r, 5));
  t.equal(gc.syncedLogOffset, 100);
  await gc.close();
});

t.test('a failed interval sync fails the log', async (t) => {
  const { cache, request } = setup(t);
  cache.failSyncAt = 0;
  const gc = groupCommit(cache, { flushPolicy: 'async', asyncFlushIntervalMs: 1000 });
  await new Promise<void>((res, rej) => gc.submit(request(100, (e) => (e ? rej(e) : res()))));
  await t.rejects(gc.syncNow(), { code: 'IoError' });
  t.throws(() => gc.checkAccept(1), { code: 'StoreClosed' });
  await gc.close();
});

t.test('a round held up by the disk says how long it has waited', async (t) => {
  const { cache, request } = setup(t);
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  // afterDurable stands in for an fdatasync that does not come back (a frozen volume)
  const gc = groupCommit(cache, { afterDurable: () => held });
  t.equal(gc.stalledMs(), 0, 'no round: not stalled');
  const acked = new Promise<void>((resolve) => gc.submit(request(100, () => resolve())));
  await waitFor('the round to start', () => gc.stalledMs(Date.now() + 1) > 0);
  t.ok(gc.stalledMs(Date.now() + 15_000) >= 15_000, 'its wait grows while the disk holds it');
  release();
  await acked;
  await waitFor('the round to end', () => gc.stalledMs() === 0);
  await gc.close();
});
