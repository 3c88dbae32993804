import t from 'tap';
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openMessageStore } from '../../src/store/index.js';
import { CRASH_QUEUES, CRASH_STORE_OPTIONS, CRASH_TOPIC, crashBody } from './crash-model.js';

const ROUNDS = 22;
const child = fileURLToPath(new URL('./store-crash-child.ts', import.meta.url));

interface RoundOutput {
  ready: boolean;
  lines: string[];
}

/** Runs the child and SIGKILLs it `killAfterMs` after it is ready, or -killAfterMs after it
 *  starts opening the store (a kill during recovery) when negative. */
function runChild(dir: string, round: number, killAfterMs: number): Promise<RoundOutput> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...process.execArgv, child, dir, String(round)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    const out: RoundOutput = { ready: false, lines: [] };
    const kill = () => proc.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const cut = buffered.lastIndexOf('\n');
      if (cut < 0) return;
      const complete = buffered.slice(0, cut).split('\n');
      buffered = buffered.slice(cut + 1);
      for (const line of complete) {
        if (line === 'OPENING') {
          if (killAfterMs < 0) timer = setTimeout(kill, -killAfterMs);
        } else if (line.startsWith('READY')) {
          out.ready = true;
          if (killAfterMs >= 0) timer = setTimeout(kill, killAfterMs);
        } else {
          out.lines.push(line);
        }
      }
    });
    proc.on('error', reject);
    // A partial last line (killed mid-write) was never an acknowledgement the parent saw whole.
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}`));
      else resolve(out);
    });
  });
}

async function crashChain(t: Test, chain: number, rounds: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-crash-'));
  const check = mkdtempSync(join(tmpdir(), 'wharf-crash-check-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(check, { recursive: true, force: true });
  });
  const ackedAt = new Map<string, string>(); // "queueId:queueOffset" -> id
  const ackedJournal = new Set<string>();
  let seed = 12345 + chain;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let totalAcked = 0;
  for (let round = 0; round < rounds; round++) {
    // Mostly while appending; every fourth round already during the child's own recovery.
    const killAfterMs = round % 4 === 3 ? -rand(40) : 20 + rand(200);
    const out = await runChild(dir, round, killAfterMs);
    for (const line of out.lines) {
      const [kind, id, queueId, queueOffset] = line.split(' ');
      if (kind === 'A') {
        const where = `${queueId}:${queueOffset}`;
        if (ackedAt.has(where)) t.fail(`two acks for ${where}`);
        ackedAt.set(where, id);
        totalAcked++;
      } else if (kind === 'J') {
        ackedJournal.add(id);
      }
    }
    // Verify on a copy, so the next child recovers from the crash state itself.
    rmSync(check, { recursive: true, force: true });
    cpSync(dir, check, { recursive: true });
    const store = await openMessageStore({ ...CRASH_STORE_OPTIONS, dir: check });
    const seen = new Set<string>();
    let problems = 0;
    const bad = (what: string) => {
      problems++;
      t.fail(what);
    };
    for (let queueId = 0; queueId < CRASH_QUEUES; queueId++) {
      let next = 0;
      const { maxQueueOffset } = store.queueOffsets(CRASH_TOPIC, queueId);
      while (next < maxQueueOffset) {
        const r = await store.readQueue(CRASH_TOPIC, queueId, next, { maxMessages: 256 });
        for (const m of r.messages) {
          const id = m.properties.id;
          if (seen.has(id)) bad(`duplicate ${id}`);
          seen.add(id);
          if (!m.body.equals(crashBody(id)) || m.keys[0] !== id) bad(`damaged ${id}`);
          const acked = ackedAt.get(`${queueId}:${m.queueOffset}`);
          if (acked !== undefined && acked !== id) bad(`${acked} replaced by ${id}`);
        }
        next = r.nextQueueOffset;
      }
    }
    for (const [where, id] of ackedAt) {
      if (!seen.has(id)) bad(`acknowledged ${id} at ${where} lost`);
    }
    const journal = store.journal.recover();
    const state: string[] = journal.snapshot
      ? (JSON.parse(journal.snapshot.toString()) as string[])
      : [];
    for await (const entry of journal.entries) state.push(entry.toString());
    const unique = new Set(state);
    if (unique.size !== state.length) bad('duplicate journal entries');
    for (const entry of ackedJournal) if (!unique.has(entry)) bad(`journal lost ${entry}`);
    await store.close();
    t.equal(
      problems,
      0,
      `chain ${chain} round ${round}: ${out.lines.length} acks, ${seen.size} records, ${state.length} journal entries`,
    );
  }
  return totalAcked;
}

// Two independent chains of rounds run side by side (the child's start-up dominates a round).
t.test('SIGKILL at random moments never loses or duplicates an acknowledged record', async (t) => {
  const perChain = ROUNDS / 2;
  const acked = await Promise.all([crashChain(t, 0, perChain), crashChain(t, 1, perChain)]);
  t.ok(acked[0] + acked[1] > ROUNDS * 10, `acknowledged ${acked[0] + acked[1]} records in all`);
});
