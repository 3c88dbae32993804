// A process's stop runs its steps once, whoever asks first: a lost lease's stop and a signal's
// stop wait for the same run (before, the second found nothing left and the process exited under
// the first one's drain), and a failed step does not skip the ones after it.
import t from 'tap';
import { stopSteps, type StopStep } from '../../src/cli/stop-steps.js';

t.test('a second stop waits for the first run of the steps', async (t) => {
  const ran: string[] = [];
  let finishDrain!: () => void;
  const drained = new Promise<void>((resolve) => (finishDrain = resolve));
  const cleanup: StopStep[] = [
    async () => {
      ran.push('lock released');
    },
  ];
  cleanup.unshift(async () => {
    ran.push('drain started');
    await drained;
    ran.push('drain done');
  });
  const stop = stopSteps(cleanup);
  const first = stop();
  let secondDone = false;
  const second = stop().then(() => (secondDone = true));
  await Promise.resolve();
  t.equal(secondDone, false, 'the second caller waits while the drain runs');
  finishDrain();
  await Promise.all([first, second]);
  t.same(ran, ['drain started', 'drain done', 'lock released'], 'each step once, in order');
  await stop();
  t.equal(ran.length, 3, 'a later stop runs nothing again');
});

t.test('a failed step does not skip the rest; the first failure is thrown', async (t) => {
  const ran: string[] = [];
  const cleanup: StopStep[] = [
    () => Promise.reject(new Error('gateway close failed')),
    () => Promise.reject(new Error('redis close failed')),
    async () => {
      ran.push('lock released');
    },
  ];
  await t.rejects(stopSteps(cleanup)(), { message: 'gateway close failed' });
  t.same(ran, ['lock released'], 'the data dir lock is released after both failures');
});
