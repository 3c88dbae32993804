// The store's record of deleted topics, as bytes: a snapshot (`deleted-topics.json`, an object of
// topic → the log offset it was deleted at, the format since the first version) and an append-only
// log of the deletions made since (`deleted-topics.log`, one JSON line each, version 1:
// `{"v":1,"topic":"…","at":123}\n`). A deletion appends one line instead of rewriting the whole
// list (which grows with every deleted topic until its records leave the log). Pure functions.

/** One line of the deletion log. */
export function encodeDeletion(topic: string, at: number): Buffer {
  return Buffer.from(`${JSON.stringify({ v: 1, topic, at })}\n`, 'utf8');
}

/** A topic's deletion offsets only grow: of two records of one topic the later one is kept, in
 *  whatever order they are read (a log not yet emptied after the snapshot that took it in). */
function keep(into: Map<string, number>, topic: string, at: number): void {
  const known = into.get(topic);
  if (known === undefined || at > known) into.set(topic, at);
}

/** The snapshot's deletions into `into`. Anything but an object of offsets is damage. */
export function decodeSnapshot(bytes: Buffer, into: Map<string, number>): void {
  const parsed = JSON.parse(bytes.toString('utf8')) as unknown;
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('deleted-topics.json: not an object');
  }
  for (const [topic, at] of Object.entries(parsed as Record<string, unknown>)) {
    if (!isOffset(at)) throw new Error(`deleted-topics.json: ${topic}: not a log offset`);
    keep(into, topic, at);
  }
}

/**
 * The log's deletions into `into`. A last line without its newline is a write a crash cut short
 * (its deletion was never answered): left out. Any other line that is not a version-1 record is
 * damage. Returns the number of whole lines.
 */
export function decodeLog(bytes: Buffer, into: Map<string, number>): number {
  const text = bytes.toString('utf8');
  const end = text.lastIndexOf('\n');
  if (end < 0) return 0;
  const lines = text.slice(0, end).split('\n');
  for (const [i, line] of lines.entries()) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw new Error(`deleted-topics.log: line ${i + 1} is not JSON`);
    }
    const { v, topic, at } = (record ?? {}) as { v?: unknown; topic?: unknown; at?: unknown };
    if (v !== 1 || typeof topic !== 'string' || !isOffset(at)) {
      throw new Error(`deleted-topics.log: line ${i + 1} is not a version-1 deletion`);
    }
    keep(into, topic, at);
  }
  return lines.length;
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
