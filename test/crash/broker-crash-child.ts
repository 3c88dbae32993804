// Broker crash child: opens a broker on a data dir (recovering from the last SIGKILL), then
// publishes and receives+acks concurrently forever, printing what the broker acknowledged:
//   P <id>    the publish carrying body <id> was answered
//   a <id>    an ack of <id> is being sent (it may take effect without the answer being seen)
//   A <id>    the ack of <id> was answered ok
// The parent SIGKILLs it at a random moment and checks the consumer state it left.
import { Broker } from '../../src/broker/index.js';
import { CRASH_GROUP, CRASH_MAC_KEY, CRASH_TOPIC } from './broker-crash-model.js';

const [dir, round] = process.argv.slice(2) as [string, string];
const broker = await Broker.open({
  dataDir: dir,
  brokerId: 0,
  macKey: CRASH_MAC_KEY,
  store: { segmentBytes: 256 * 1024, minFreeDiskBytes: 0, journalSegmentBytes: 64 * 1024 },
  snapshotAfterBytes: 32 * 1024,
});
process.stdout.write('READY\n');

let seq = 0;
let random = Number(round) * 7919 + 3;
function next(n: number): number {
  random = (Math.imul(random, 1103515245) + 12345) >>> 0;
  return random % n;
}

async function publisher(): Promise<void> {
  for (;;) {
    const ids = Array.from({ length: 1 + next(16) }, () => `r${round}-${seq++}`);
    await broker.publish(
      CRASH_TOPIC,
      ids.map((id) => ({ body: Buffer.from(id), bodyEncoding: 'utf8' as const })),
    );
    process.stdout.write(ids.map((id) => `P ${id}\n`).join(''));
  }
}

async function consumer(): Promise<void> {
  for (;;) {
    const messages = await broker.receive(CRASH_TOPIC, CRASH_GROUP, {
      maxMessages: 1 + next(32),
      waitMs: 50,
      tags: '*',
      invisibleMs: 300,
    });
    // ack most, leave some in flight (they must come back after the crash)
    const acking = messages.filter(() => next(5) !== 0);
    process.stdout.write(acking.map((m) => `a ${m.body.toString()}\n`).join(''));
    const results = await broker.ack(
      CRASH_TOPIC,
      CRASH_GROUP,
      acking.map((m) => m.receiptHandle),
    );
    process.stdout.write(
      acking
        .filter((_, i) => results[i]?.ok === true)
        .map((m) => `A ${m.body.toString()}\n`)
        .join(''),
    );
  }
}

await Promise.all([publisher(), consumer(), consumer()]);
