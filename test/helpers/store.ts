// Store test harness: a store in a tap test dir with small files, closed at teardown.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { openMessageStore } from '../../src/store/index.js';
import type { AppendMessage, MessageStore, MessageStoreOptions } from '../../src/store/index.js';

export const SMALL: Partial<MessageStoreOptions> = {
  segmentBytes: 64 * 1024,
  consumeQueueSegmentEntries: 64,
  keyIndexSlots: 512,
  keyIndexEntriesPerFile: 256,
  journalSegmentBytes: 4 * 1024,
  minFreeDiskBytes: 1,
  maxOpenFiles: 16,
};

const openStores = new WeakMap<Test, MessageStore[]>();

/** A fresh directory, removed at teardown after every store opened by openTestStore closes.
 *  (tap removes t.testdir() before user teardowns run, under an open store.) */
export function storeDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-store-'));
  const stores: MessageStore[] = [];
  openStores.set(t, stores);
  t.teardown(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export async function openTestStore(
  t: Test,
  dir: string,
  options: Partial<MessageStoreOptions> = {},
): Promise<MessageStore> {
  const store = await openMessageStore({ ...SMALL, ...options, dir });
  let stores = openStores.get(t);
  if (stores === undefined) {
    stores = [];
    openStores.set(t, stores);
    t.teardown(() => Promise.allSettled(stores!.map((s) => s.close())).then(() => undefined));
  }
  stores.push(store);
  return store;
}

export function message(
  topic: string,
  queueId: number,
  i: number,
  extra: Partial<AppendMessage> = {},
): AppendMessage {
  return {
    topic,
    queueId,
    body: Buffer.from(`body-${topic}-${queueId}-${i}-`.padEnd(100 + (i % 50), 'x')),
    bornTimestampMs: 1_000 + i,
    ...extra,
  };
}
