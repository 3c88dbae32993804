import t from 'tap';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { SyncCounter, parsePerfSyncCounts } from '../../../scripts/bench/lib/sync-counter.js';

t.test('perf stat CSV: the sync counts are summed', async (t) => {
  const csv = [
    '',
    '3514,,syscalls:sys_enter_fdatasync,5749636959,100.00,,',
    '25,,syscalls:sys_enter_fsync,5749636959,100.00,,',
    '',
  ].join('\n');
  t.equal(parsePerfSyncCounts(csv), 3539);
  t.equal(parsePerfSyncCounts('0,,syscalls:sys_enter_fdatasync,1,100.00,,\n'), 0);
  t.equal(parsePerfSyncCounts('<not supported>,,syscalls:sys_enter_fsync,0,0,,'), null);
  t.equal(parsePerfSyncCounts('Error: no permission'), null);
});

t.test('no perf, or a perf that exits at once, means no count', async (t) => {
  t.equal(await SyncCounter.start(process.pid, 'no-such-perf-binary'), null);
  const dir = t.testdir();
  const failing = join(dir, 'perf');
  writeFileSync(failing, '#!/bin/sh\necho "no permission" >&2\nexit 1\n');
  chmodSync(failing, 0o755);
  t.equal(await SyncCounter.start(process.pid, failing), null);
});

t.test('a perf stand-in that prints counts on SIGINT is read at stop', async (t) => {
  const dir = t.testdir();
  const fake = join(dir, 'perf');
  writeFileSync(
    fake,
    [
      '#!/bin/sh',
      'trap \'echo "7,,syscalls:sys_enter_fdatasync,1,100.00,," >&2; echo "2,,syscalls:sys_enter_fsync,1,100.00,," >&2; exit 0\' INT',
      'while :; do sleep 0.05; done',
      '',
    ].join('\n'),
  );
  chmodSync(fake, 0o755);
  const counter = await SyncCounter.start(process.pid, fake);
  t.ok(counter !== null);
  t.equal(await counter!.stop(), 9);
  t.equal(await counter!.stop(), null, 'stopped already');
});
