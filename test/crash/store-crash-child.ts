// Crash child: opens the store (recovering from whatever the last SIGKILL left), then appends
// random-size batches and journal entries forever, printing each acknowledged one on stdout:
//   A <id> <queueId> <queueOffset>   a message append resolved
//   J <entry>                        a journal append resolved
// (after OPENING, before READY, the child is recovering: some rounds kill it then)
// The parent SIGKILLs it at a random moment.
import { openMessageStore } from '../../src/store/index.js';
import { CRASH_QUEUES, CRASH_STORE_OPTIONS, crashMessage } from './crash-model.js';

const [dir, round] = process.argv.slice(2) as [string, string];
process.stdout.write('OPENING\n');
const store = await openMessageStore({ ...CRASH_STORE_OPTIONS, dir });
const recovered = store.journal.recover();
const journalState: string[] = recovered.snapshot
  ? (JSON.parse(recovered.snapshot.toString()) as string[])
  : [];
for await (const entry of recovered.entries) journalState.push(entry.toString());
process.stdout.write(`READY ${store.recovery.redispatchedRecords}\n`);

let seq = 0;
let journalSeq = 0;
let random = Number(round) * 7919 + 1;
function next(n: number): number {
  random = (Math.imul(random, 1103515245) + 12345) >>> 0;
  return random % n;
}

async function appender(): Promise<void> {
  for (;;) {
    const size = 1 + next(24);
    const ids: string[] = [];
    const batch = [];
    for (let i = 0; i < size; i++) {
      const id = `r${round}-${seq++}`;
      ids.push(id);
      batch.push(crashMessage(id, next(CRASH_QUEUES)));
    }
    const results = await store.append(batch);
    let out = '';
    for (let i = 0; i < size; i++)
      out += `A ${ids[i]} ${batch[i].queueId} ${results[i].queueOffset}\n`;
    process.stdout.write(out);
  }
}

async function journaler(): Promise<void> {
  for (;;) {
    const entries = Array.from({ length: 1 + next(5) }, () => `j${round}-${journalSeq++}`);
    journalState.push(...entries);
    if (next(10) === 0) {
      // The snapshot reflects every entry appended before the call (placed, acked or not).
      const appended = store.journal.append(entries.map((e) => Buffer.from(e)));
      const snapshot = store.journal.writeSnapshot(Buffer.from(JSON.stringify(journalState)));
      await appended;
      await snapshot;
    } else {
      await store.journal.append(entries.map((e) => Buffer.from(e)));
    }
    process.stdout.write(entries.map((e) => `J ${e}\n`).join(''));
  }
}

await Promise.all([appender(), appender(), appender(), journaler()]);
