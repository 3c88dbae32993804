// What the crash child writes and the parent checks: a record's body, keys and properties are a
// pure function of its id, so the parent can verify every record byte for byte.
import type { AppendMessage, MessageStoreOptions } from '../../src/store/index.js';

export const CRASH_TOPIC = 'crash';
export const CRASH_QUEUES = 3;

export const CRASH_STORE_OPTIONS: Partial<MessageStoreOptions> = {
  // Tiny segments so that kills often land during a roll-over.
  segmentBytes: 16 * 1024,
  journalSegmentBytes: 2 * 1024,
  consumeQueueSegmentEntries: 128,
  keyIndexSlots: 256,
  keyIndexEntriesPerFile: 512,
  minFreeDiskBytes: 1,
  checkpointIntervalMs: 20,
  maxOpenFiles: 32,
};

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function crashBody(id: string): Buffer {
  const length = hash(id) % 1200;
  return Buffer.alloc(length, `${id}|`);
}

export function crashMessage(id: string, queueId: number): AppendMessage {
  return {
    topic: CRASH_TOPIC,
    queueId,
    tag: `tag${hash(id) % 4}`,
    keys: [id],
    properties: { id },
    body: crashBody(id),
    bornTimestampMs: 1_700_000_000_000,
  };
}
