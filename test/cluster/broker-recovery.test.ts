// A broker that is still recovering its store is not routed to (real processes: a gateway, a
// serving broker and a second broker whose recovery waits on a named pipe standing in for a slow
// disk): it holds its id from the start, but a gateway lists it neither ready nor unreachable —
// it is not registered — until its RPC server serves; then it is ready.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { MetaStore } from '../../src/meta/index.js';
import { startTestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait-for.js';

// three processes started from the sources on a shared 2-core machine: minutes, not seconds
t.setTimeout(300_000);

interface Readiness {
  brokers: { id: number; state: string }[];
}

t.test('a broker is registered only once it serves, not while it recovers', async (t) => {
  const cluster = await startTestCluster(t, { brokers: 1, gateways: 1 });
  const brokers = async () =>
    ((await (await fetch(`${cluster.gateways[0].url}/readyz`)).json()) as Readiness).brokers;

  // broker 2's recovery reads its checkpoint: a pipe holds the read until the test writes it
  const storeDir = join(cluster.options.dataDir, 'b2', 'broker-2');
  mkdirSync(storeDir, { recursive: true });
  execFileSync('mkfifo', [join(storeDir, 'checkpoint')]);
  const started = cluster.startBroker(2);
  // opening the pipe for writing waits for the broker to open it for reading: it is recovering
  const pipe = await open(join(storeDir, 'checkpoint'), 'w');

  // a registry change made after broker 2 claimed its id: once the gateway lists it, the
  // gateway's table was read after broker 2 claimed
  const meta = await MetaStore.open({
    redisUrl: cluster.redisUrl,
    masterKey: cluster.options.masterKey,
  });
  t.teardown(() => meta.close());
  const marker = await meta.claimBrokerId({ brokerId: 9, address: '127.0.0.1:1' });
  await waitFor('the gateway to see the marker', async () =>
    (await brokers()).some((b) => b.id === 9),
  );
  const recovering = (await brokers()).find((b) => b.id === 2);
  t.equal(recovering, undefined, 'a recovering broker is not listed (nothing is routed to it)');
  await marker.release();

  await pipe.close(); // an empty checkpoint: the store is rebuilt from its log
  await started;
  await waitFor(
    'the gateway to list broker 2 ready once it serves',
    async () => (await brokers()).find((b) => b.id === 2)?.state === 'ready',
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  t.pass('broker 2 is ready once it serves');
});
