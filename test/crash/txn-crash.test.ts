// SIGKILL a whole node while producers publish half messages and commit or roll them back over
// signed HTTP; restart it on the same data dir (and again, several rounds), then on a fresh
// process: every answered commit is delivered exactly once, no answered rollback ever is, an
// answered decision never changes, and undecided halves are still there to be decided.
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientOf, drain, type Tenant, type TxnClient } from '../helpers/txn-client.js';
import { startWharf } from '../helpers/wharf.js';

const ROUNDS = 3;
const WORKERS = 4;
const child = fileURLToPath(new URL('./txn-crash-child.ts', import.meta.url));

interface Ledger {
  /** transactionId → messageId of every answered publish */
  published: Map<string, string>;
  commitSent: Set<string>;
  committed: Set<string>;
  rollbackSent: Set<string>;
  rolledBack: Set<string>;
}

/** Starts the node; resolves with its URL and a function that SIGKILLs it and waits. */
function startChild(
  dataDir: string,
  redisUrl: string,
  masterKey: string,
): Promise<{ url: string; kill: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...process.execArgv, child, dataDir, redisUrl, masterKey],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    const exited = new Promise<void>((done) => proc.once('exit', () => done()));
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /READY (\S+)\n/.exec(out);
      if (m !== null)
        resolve({
          url: m[1],
          kill: async () => {
            proc.kill('SIGKILL');
            await exited;
          },
        });
    });
    proc.once('exit', (code, signal) => {
      if (!/READY/.test(out)) reject(new Error(`child exited early: ${code} ${signal}`));
    });
  });
}

/** One producer: publish two halves, decide each (commit, rollback, or leave), until it fails. */
async function produce(c: TxnClient, ledger: Ledger, worker: number, stop: () => boolean) {
  let n = 0;
  while (!stop()) {
    try {
      const halves = await c.publish('orders', [
        { body: `w${worker}-${n++}` },
        { body: `w${worker}-${n++}` },
      ]);
      for (const half of halves) ledger.published.set(half.transactionId, half.messageId);
      for (const half of halves) {
        const choice = (n + worker + half.queueId) % 3;
        if (choice === 2) continue; // left undecided
        const decision = choice === 0 ? 'commit' : 'rollback';
        (decision === 'commit' ? ledger.commitSent : ledger.rollbackSent).add(half.transactionId);
        const res = await c.decide('orders', half.transactionId, decision);
        if (res.status !== 204) throw new Error(`${decision} answered ${res.status}`);
        (decision === 'commit' ? ledger.committed : ledger.rolledBack).add(half.transactionId);
      }
    } catch {
      return; // the node was killed
    }
  }
}

t.test('after SIGKILL every answered decision holds and commits deliver once', async (t) => {
  const holder = await startWharf(t); // Redis and metadata outlive the killed nodes
  const dataDir = join(t.testdir(), 'broker');
  const setup = await clientOf(holder);
  await setup.topic('orders');
  await setup.group('billing');
  const tenant: Tenant = setup.tenant;
  const ledger: Ledger = {
    published: new Map(),
    commitSent: new Set(),
    committed: new Set(),
    rollbackSent: new Set(),
    rolledBack: new Set(),
  };
  let seed = 7;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let round = 0; round < ROUNDS; round++) {
    const node = await startChild(dataDir, holder.redisUrl, holder.masterKey);
    const c = await clientOf({ url: node.url, adminToken: holder.adminToken }, tenant);
    let killed = false;
    const workers = Array.from({ length: WORKERS }, (_, w) =>
      produce(c, ledger, w + round * WORKERS, () => killed),
    );
    // let the producers get going, then kill at a moment they are mid-request
    const atLeast = ledger.published.size + 20;
    while (ledger.published.size < atLeast) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, rand(200)));
    killed = true;
    await node.kill();
    await Promise.all(workers);
  }
  t.ok(ledger.committed.size > 0 && ledger.rolledBack.size > 0, 'both decisions were answered');

  const after = await startWharf(t, {
    redisUrl: holder.redisUrl,
    brokerDir: dataDir,
    transactions: { checkDelayMs: 0 },
  });
  const c = await clientOf(after, tenant);
  // every answered half no decision was sent for is still undecided: offered by check-back
  const offered = new Set<string>();
  for (;;) {
    const fresh = (await c.check('orders')).filter((m) => !offered.has(m.transactionId));
    if (fresh.length === 0) break;
    for (const m of fresh) offered.add(m.transactionId);
  }
  const undecided = [...ledger.published.keys()].filter(
    (id) => !ledger.commitSent.has(id) && !ledger.rollbackSent.has(id),
  );
  t.ok(undecided.length > 0, 'some halves were left undecided');
  t.ok(
    undecided.every((id) => offered.has(id)),
    'every undecided half survived the kills and is offered',
  );
  // answered decisions hold
  for (const id of ledger.committed) {
    const res = await c.decide('orders', id, 'rollback');
    if (res.status !== 409) t.fail(`answered commit of ${id}: rollback answered ${res.status}`);
  }
  for (const id of ledger.rolledBack) {
    const res = await c.decide('orders', id, 'commit');
    if (res.status !== 409) t.fail(`answered rollback of ${id}: commit answered ${res.status}`);
  }
  // unanswered rollbacks: whether or not they were durable, rolling back again is fine
  for (const id of ledger.rollbackSent) {
    const res = await c.decide('orders', id, 'rollback');
    if (res.status !== 204) t.fail(`rollback of ${id} answered ${res.status}`);
  }
  // everything else that was published is committed now (an unanswered commit: 204 either way)
  const toDeliver = [...ledger.published.keys()].filter((id) => !ledger.rollbackSent.has(id));
  for (const id of toDeliver) {
    const res = await c.decide('orders', id, 'commit');
    if (res.status !== 204) t.fail(`commit of ${id} answered ${res.status}`);
  }
  const got = await drain(c, 'orders', 'billing', toDeliver.length);
  t.same(await c.receive('orders', 'billing'), [], 'nothing more');
  const delivered = got.map((m) => m.messageId);
  t.equal(new Set(delivered).size, delivered.length, 'no message delivered twice');
  t.same(
    new Set(delivered),
    new Set(toDeliver.map((id) => ledger.published.get(id))),
    'exactly the committed ones',
  );
  // what is still undecided is only what no publish answer named (a publish cut by the kill)
  const left = await c.check('orders');
  t.notOk(
    left.some((m) => ledger.published.has(m.transactionId)),
    'every answered half was decided above',
  );
  t.comment(
    `published ${ledger.published.size}, commits answered ${ledger.committed.size}, ` +
      `rollbacks answered ${ledger.rolledBack.size}, cut publishes left undecided ${left.length}`,
  );
});
