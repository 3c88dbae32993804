import t from 'tap';
import { fileURLToPath } from 'node:url';
import {
  type DriverJob,
  loadDriver,
  measureInChild,
  parseDriverJob,
} from '../../../scripts/bench/lib/driver-job.js';
import { measureDriver } from '../../../scripts/bench/lib/measure-driver.js';
import { runInChild } from '../../../scripts/bench/lib/child-runner.js';
import { MemoryDriver } from '../fixtures/memory-driver.js';

const fixture = fileURLToPath(new URL('../fixtures/memory-driver.ts', import.meta.url));

function job(config: Record<string, unknown> = {}): DriverJob {
  return {
    module: fixture,
    factory: 'createMemoryDriver',
    config,
    plan: { messages: 50, bodyBytes: 64, batch: 8, window: 16, ratePerSec: 1000, durationMs: 20 },
    serverPid: process.pid,
  };
}

t.test('a load process measures every phase and reports back', async (t) => {
  const measurement = await measureInChild(job(), { timeoutMs: 60_000 });
  t.equal(measurement.name, 'Memory 1.0', 'labels are read after setup');
  t.equal(measurement.durable, 'no (memory)');
  t.equal(measurement.publish?.messages, 50);
  t.equal(measurement.publish?.window, 16);
  t.equal(measurement.consume?.messages, 50);
  t.equal(measurement.latency?.sent, 20);
  t.equal(measurement.latency?.count, 20);
  t.type(measurement.publish?.cpu.serverPct, 'number', 'the server pid is sampled');
  t.type(measurement.latency?.cpu.clientPct, 'number');
});

t.test('a failing phase comes back as an error naming it', async (t) => {
  await t.rejects(measureInChild(job({ failIn: 'publish' }), { timeoutMs: 60_000 }), {
    message: 'publish failed on purpose',
  });
});

t.test('teardown runs after a failure, and phases can be skipped', async (t) => {
  const failing = new MemoryDriver('setup');
  await t.rejects(measureDriver(failing, job().plan, null), { message: 'setup failed on purpose' });
  t.ok(failing.tornDown);
  const driver = new MemoryDriver('none');
  const measurement = await measureDriver(
    driver,
    { ...job().plan, window: undefined, consumeBatch: 4, phases: ['consume'] },
    null,
  );
  t.ok(measurement.publish !== undefined, 'consuming needs the backlog, so publish runs');
  t.equal(measurement.consume?.window, 4);
  t.equal(measurement.latency, undefined);
  t.equal(measurement.publish?.cpu.serverPct, null, 'no server pid, no server share');
  t.ok(driver.tornDown);
});

t.test('a job is checked field by field', async (t) => {
  const good = job();
  t.same(parseDriverJob(JSON.parse(JSON.stringify(good))), good);
  t.same(parseDriverJob({ ...good, serverPid: null }).serverPid, null);
  t.throws(() => parseDriverJob(null), /must be an object/);
  t.throws(() => parseDriverJob({ ...good, module: 1 }), /module/);
  t.throws(() => parseDriverJob({ ...good, factory: null }), /factory/);
  t.throws(() => parseDriverJob({ ...good, config: [] }), /config/);
  t.throws(() => parseDriverJob({ ...good, plan: 'x' }), /plan must/);
  t.throws(
    () => parseDriverJob({ ...good, plan: { ...good.plan, messages: '5' } }),
    /plan.messages/,
  );
  t.throws(() => parseDriverJob({ ...good, serverPid: '1' }), /serverPid/);
});

t.test('a module without the named factory is refused', async (t) => {
  await t.rejects(loadDriver({ ...job(), factory: 'nope' }), /no driver factory named nope/);
  const driver = await loadDriver({
    ...job(),
    module: new URL('../fixtures/memory-driver.ts', import.meta.url).href,
  });
  t.equal(driver.mode, 'array queue', 'a file: URL works too');
});

t.test('a child that reports nothing or hangs is an error', async (t) => {
  await t.rejects(runInChild(fixture, []), /exited \(code 0\) without a result/);
  const sleeper = fileURLToPath(new URL('../fixtures/sleeper.ts', import.meta.url));
  await t.rejects(runInChild(sleeper, [], { timeoutMs: 300 }), /timed out after 300 ms/);
});
