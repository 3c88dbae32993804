import t from 'tap';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  CpuSampler,
  MachineCpuSampler,
  SelfCpuSampler,
  cpuSharePct,
  findServerPid,
  listeningInodes,
  parseMachineBusyTicks,
  parseStatCpuTicks,
  waitForQuietMachine,
} from '../../../scripts/bench/lib/cpu-sampler.js';

t.test('utime + stime come from fields 14 and 15, even when comm has spaces', async (t) => {
  const rest = 'S 1 2935 2935 0 -1 4194560 120 0 0 0 1500 250 0 0 20 0 40 0 1234 5678 90';
  t.equal(parseStatCpuTicks(`2935 (beam.smp) ${rest}`), 1750);
  t.equal(parseStatCpuTicks(`42 (a (weird) name) ${rest}`), 1750);
  t.throws(() => parseStatCpuTicks('garbage'));
  t.throws(() => parseStatCpuTicks('1 (x) S 1'));
});

t.test(
  'this process can be sampled through /proc',
  { skip: process.platform !== 'linux' },
  async (t) => {
    t.type(parseStatCpuTicks(readFileSync(`/proc/${process.pid}/stat`, 'utf8')), 'number');
    const sampler = CpuSampler.start(process.pid);
    t.ok(sampler !== null);
    let x = 0;
    for (let i = 0; i < 1e6; i++) x += i;
    t.ok(x > 0);
    const share = sampler!.stop();
    t.type(share, 'number');
    t.ok(share! >= 0);
    t.equal(CpuSampler.start(2 ** 30), null, 'no such pid');
    const machine = MachineCpuSampler.start();
    t.ok(machine !== null);
    t.ok(machine!.stop()! >= 0);
  },
);

t.test('own CPU share and the share arithmetic', async (t) => {
  t.ok(new SelfCpuSampler().stop() >= 0);
  t.equal(cpuSharePct(500, 1000), 50);
  t.equal(cpuSharePct(3000, 1000), 300, 'several cores');
  t.ok(Number.isNaN(cpuSharePct(1, 0)));
});

t.test('machine busy ticks leave out idle and iowait', async (t) => {
  t.equal(
    parseMachineBusyTicks('cpu  100 5 50 1000 30 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n'),
    161,
  );
  t.throws(() => parseMachineBusyTicks('intr 1 2 3'));
  t.throws(() => parseMachineBusyTicks('cpu 1 2 x'));
});

const procNetTcp = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0',
  '   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0',
  '   2: 0100007F:18EB 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0',
  '',
].join('\n');

t.test('listening sockets are found by port in /proc/net/tcp', async (t) => {
  t.same([...listeningInodes(procNetTcp, 6379)], ['222'], 'established connections are left out');
  t.same([...listeningInodes(procNetTcp, 8080)], ['111']);
  t.same([...listeningInodes(procNetTcp, 1)], []);
});

t.test(
  'a server pid is found by name and listening port',
  { skip: process.platform !== 'linux' },
  async (t) => {
    t.equal(findServerPid('no-such-process-name', 1), null);
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const name = readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim();
    t.equal(findServerPid(name, port), process.pid);
  },
);

t.test('waiting for a quiet machine returns after one sample or at the timeout', async (t) => {
  const anyLoad = await waitForQuietMachine({ maxBusyPct: 1e9, timeoutMs: 0, sampleMs: 10 });
  t.equal(anyLoad.quiet, true);
  const never = await waitForQuietMachine({ maxBusyPct: -1, timeoutMs: 0, sampleMs: 10 });
  t.equal(never.quiet, process.platform !== 'linux');
  t.ok(never.waitedMs >= 0);
});
