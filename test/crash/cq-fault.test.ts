// Defect 2 of #8: a checkpoint after a failed consume-queue write. The write of a consume-queue
// file fails (ENOSPC injected in a child process), a later checkpoint runs, the child is
// SIGKILLed, and the store is reopened: every acknowledged message must be read back.
import t from 'tap';
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openMessageStore } from '../../src/store/index.js';

const child = fileURLToPath(new URL('./cq-fault-child.ts', import.meta.url));

function runChild(dir: string, mode: 'heal' | 'failing'): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...process.execArgv, child, dir, mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('DONE\n')) proc.kill('SIGKILL');
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}:\n${out}`));
      else resolve(out.split('\n').filter((l) => l.length > 0));
    });
  });
}

async function readsBack(t: Test, mode: 'heal' | 'failing', cp2: string): Promise<void> {
  const dir = t.testdir();
  const lines = await runChild(dir, mode);
  const acked = lines.filter((l) => l.startsWith('A ')).map((l) => l.split(' '));
  t.equal(acked.length, 300, 'every append acknowledged (the commit log worked)');
  t.ok(lines.includes('CP1 failed'), 'the checkpoint after the failed write fails');
  t.ok(lines.includes(`CP2 ${cp2}`), `the next checkpoint: ${cp2}`);
  t.ok(lines.includes('READ 300'), 'entries of the failed write are read from memory');
  const store = await openMessageStore({
    dir,
    minFreeDiskBytes: 0,
    segmentBytes: 1024 * 1024,
    consumeQueueSegmentEntries: 64,
  });
  t.same(store.queueOffsets('cq-fault', 0), { minQueueOffset: 0, maxQueueOffset: 300 });
  const read = await store.readQueue('cq-fault', 0, 0, { maxMessages: 1000 });
  t.equal(read.messages.length, 300);
  for (const [, queueOffset, body] of acked) {
    const m = read.messages[Number(queueOffset)];
    t.equal(m?.body.toString(), body, `message ${queueOffset}`);
  }
  await store.close();
}

t.test('writes that fail and come back: the checkpoint writes them again', (t) =>
  readsBack(t, 'heal', 'ok'),
);

t.test('writes that keep failing: no checkpoint passes them, restart rebuilds', (t) =>
  readsBack(t, 'failing', 'failed'),
);
