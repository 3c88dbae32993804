// Defect 3 of #8, as a client sees it: a broker whose disk is full (below the watermark, on a
// real tmpfs) answers publishes 503 Unavailable with retry-after and /readyz 503, while receive,
// ack and queries go on from the reserve; once space returns it recovers by itself.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../../src/broker/index.js';
import { MIN_FREE_DISK_FLOOR_BYTES } from '../../src/store/index.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';
import { clientOf, drain } from '../helpers/txn-client.js';
import { json, provisionTenant, signedFetch, startWharf } from '../helpers/wharf.js';

/** Polls `probe` until it is true, or fails after `deadlineMs` (a wait for a condition). */
async function until(what: string, probe: () => Promise<boolean>, deadlineMs = 20_000) {
  const end = Date.now() + deadlineMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A node whose broker keeps its data on a fresh 64 MiB tmpfs (small files, a watermark of 0:
 *  the disk itself refuses); null when no tmpfs can be mounted here (the test is skipped). */
async function nodeOnTmpfs(t: Test) {
  const mnt = mountTmpfs(t, 64);
  if (mnt === null) return null;
  const wharf = await startWharf(t, {
    brokerDir: join(mnt, 'broker-0'),
    store: {
      minFreeDiskBytes: 0,
      segmentBytes: 4 * 1024 * 1024,
      journalSegmentBytes: 1024 * 1024,
      keyIndexSlots: 1024,
      keyIndexEntriesPerFile: 4096,
      diskCheckIntervalMs: 50,
    },
  });
  // The broker is closed before the tmpfs goes (teardowns run in reverse order).
  t.teardown(() => wharf.close());
  return { mnt, wharf };
}

t.test(
  'full disk: publish and /readyz 503, receive and ack work, recovery by itself',
  async (t) => {
    const node = await nodeOnTmpfs(t);
    if (node === null) return;
    const { mnt, wharf } = node;
    const tenant = await provisionTenant(wharf);
    const i = `/v1/instances/${tenant.instanceId}`;
    const call = (method: string, path: string, body?: unknown) =>
      signedFetch(wharf.url, {
        method,
        path: `${i}${path}`,
        ...(body === undefined ? {} : { body }),
        ak: tenant.accessKeyId,
        sk: tenant.accessKeySecret,
      });
    t.equal(
      (await call('PUT', '/topics/orders', { messageType: 'NORMAL', queueCount: 1 })).status,
      201,
    );
    t.equal((await call('PUT', '/groups/g', {})).status, 201);
    const publish = () => call('POST', '/topics/orders/messages', { messages: [{ body: 'x' }] });
    t.equal((await publish()).status, 200);
    t.equal((await fetch(`${wharf.url}/readyz`)).status, 200);

    // Below the watermark (the floor: WHARF_MIN_FREE_DISK_MB=0), above zero: the reserve.
    const filler = join(mnt, 'filler');
    fillDisk(filler, MIN_FREE_DISK_FLOOR_BYTES / 2);
    let refused: Response | undefined;
    await until('publishes refused', async () => {
      const res = await publish();
      if (res.status === 200) return false;
      refused = res;
      return true;
    });
    t.equal(refused!.status, 503);
    t.equal((await json(refused!)).error.code, 'Unavailable');
    t.ok(Number(refused!.headers.get('retry-after')) >= 1, 'retry-after');
    const ready = await fetch(`${wharf.url}/readyz`);
    t.equal(ready.status, 503, '/readyz says the broker cannot write');
    t.match((await json(ready)).error.message, /watermark|disk full/);

    const received = await call('POST', '/topics/orders/groups/g/receive', { maxMessages: 32 });
    t.equal(received.status, 200, 'receive works on a full disk');
    const { messages } = (await json(received)) as {
      messages: { receiptHandle: string; messageId: string }[];
    };
    t.ok(messages.length >= 1);
    const acked = await call('POST', '/topics/orders/groups/g/ack', {
      receiptHandles: messages.map((m) => m.receiptHandle),
    });
    t.equal(acked.status, 200, 'ack works from the reserve');
    t.ok(((await json(acked)) as { results: { ok: boolean }[] }).results.every((r) => r.ok));
    const queried = await call('GET', `/topics/orders/messages/${messages[0].messageId}`);
    t.equal(queried.status, 200, 'query works');

    fs.rmSync(filler);
    await until(
      '/readyz ready again',
      async () => (await fetch(`${wharf.url}/readyz`)).status === 200,
    );
    t.equal((await publish()).status, 200, 'publishes accepted again, no restart');
  },
);

t.test('a broker restarted on a full disk comes up read-only instead of failing', async (t) => {
  const mnt = mountTmpfs(t, 32);
  if (mnt === null) return;
  const options = {
    dataDir: join(mnt, 'broker-0'),
    brokerId: 0,
    macKey: Buffer.alloc(32, 7),
    store: {
      minFreeDiskBytes: 0,
      segmentBytes: 4 * 1024 * 1024,
      journalSegmentBytes: 1024 * 1024,
      keyIndexSlots: 1024,
      keyIndexEntriesPerFile: 4096,
    },
  };
  let broker = await Broker.open(options);
  t.same(await broker.health(), { ready: true });
  await broker.close();
  fillDisk(join(mnt, 'filler'), 0);
  broker = await Broker.open(options);
  const health = await broker.health();
  t.equal(health.ready, false, 'not ready: it cannot take publishes');
  t.match(health.detail, /below the watermark/);
  await broker.close();
  t.pass('opened and closed on a full disk');
});

t.test(
  'a commit the full disk refused decides nothing: not delivered unless asked again, then once',
  async (t) => {
    const node = await nodeOnTmpfs(t);
    if (node === null) return;
    const { mnt, wharf } = node;
    const c = await clientOf(wharf);
    await c.topic('orders');
    await c.group('billing');
    const halves = [];
    for (let batch = 0; batch < 7; batch++) {
      halves.push(
        ...(await c.publish(
          'orders',
          Array.from({ length: 32 }, (_, n) => ({ body: `pay ${batch * 32 + n}` })),
        )),
      );
    }

    // No byte left: commits go through until a journal write needs a block the disk lacks.
    const filler = join(mnt, 'filler');
    fillDisk(filler, 0);
    const committed: string[] = [];
    let refused: { status: number; body?: Record<string, unknown> } | undefined;
    let refusedHalf: (typeof halves)[number] | undefined;
    for (const half of halves) {
      const res = await c.decide('orders', half.transactionId, 'commit');
      if (res.status !== 204) {
        refused = res;
        refusedHalf = half;
        break;
      }
      committed.push(half.messageId);
    }
    if (refusedHalf === undefined) return t.fail('no commit was refused by the full disk');
    t.equal(refused?.status, 503, 'the refused commit answers 503');
    t.equal(
      (await c.decide('orders', refusedHalf.transactionId, 'rollback')).status,
      503,
      'a rollback of it while the disk is full is refused too, not a conflict',
    );

    // Space returns; nothing refused comes back by itself.
    fs.rmSync(filler);
    await until(
      '/readyz ready again',
      async () => (await fetch(`${wharf.url}/readyz`)).status === 200,
    );
    const got = await drain(c, 'orders', 'billing', committed.length);
    t.same(
      got.map((m) => m.messageId).sort(),
      [...committed].sort(),
      'every commit answered 204 delivered once, not the refused one',
    );
    t.same(await c.receive('orders', 'billing'), [], 'nothing more: the rest stay undecided');
    // the producer asks again (its retry, or its answer to the check-back)
    t.equal((await c.decide('orders', refusedHalf.transactionId, 'commit')).status, 204);
    const after = await drain(c, 'orders', 'billing', 1);
    t.same(
      after.map((m) => m.messageId),
      [refusedHalf.messageId],
      'delivered once it is committed',
    );
    t.equal(
      (await c.decide('orders', refusedHalf.transactionId, 'rollback')).status,
      409,
      'the commit stands: a rollback after it conflicts',
    );
  },
);

t.test(
  'a topic and a group deleted while the disk refuses their drops: the drops wait for space, the names are not created again until then, and nothing of them comes back',
  async (t) => {
    const node = await nodeOnTmpfs(t);
    if (node === null) return;
    const { mnt, wharf } = node;
    const c = await clientOf(wharf);
    await c.topic('orders', 'NORMAL');
    await c.topic('later', 'DELAY');
    await c.group('billing');
    // a group that stays, holding a re-sent dead letter of the topic (its re-send queue)
    t.equal((await c.call('PUT', '/groups/keeper', { maxDeliveryAttempts: 1 })).status, 201);
    await c.publish(
      'orders',
      Array.from({ length: 20 }, (_, n) => ({ body: `old ${n}`, dedupId: `d${n}` })),
    );
    const kept = await c.receive('orders', 'keeper');
    await c.call('POST', '/topics/orders/groups/keeper/ack', {
      receiptHandles: kept.slice(1).map((m) => m.receiptHandle),
    });
    await c.call('POST', '/topics/orders/groups/keeper/visibility', {
      receiptHandle: kept[0].receiptHandle,
      invisibleSeconds: 0,
    });
    await until('a dead letter in keeper', async () => {
      await c.receive('orders', 'keeper'); // its last attempt used: moved to the dead letters
      const listed = await c.call('GET', '/groups/keeper/dead-letters');
      return (listed.body?.messages as unknown[]).length === 1;
    });
    const resent = await c.call('POST', '/groups/keeper/dead-letters/resend', {
      messageIds: [kept[0].messageId],
    });
    t.match(resent.body, { results: [{ ok: true }] }, 'the dead letter is re-sent, not received');
    await c.publish(
      'later',
      Array.from({ length: 5 }, (_, n) => ({ body: `old later ${n}`, delaySeconds: 3 })),
    );
    const first = await c.receive('orders', 'billing');
    const acked = await c.call('POST', '/topics/orders/groups/billing/ack', {
      receiptHandles: first.slice(0, 5).map((m) => m.receiptHandle),
    });
    t.equal(acked.status, 200);

    // No byte left: visibility changes (journal entries) go through until the journal needs a
    // block the disk lacks; from then on the broker's drops are refused too.
    const filler = join(mnt, 'filler');
    fillDisk(filler, 0);
    const held = first[5].receiptHandle;
    await until('the journal refuses a write', async () => {
      const res = await c.call('POST', '/topics/orders/groups/billing/visibility', {
        receiptHandle: held,
        invisibleSeconds: 60,
      });
      return res.status === 503;
    });
    for (const path of ['/topics/orders', '/topics/later', '/groups/billing']) {
      const deleted = await c.call('DELETE', path);
      t.equal(deleted.status, 204, `${path}: deleted (its drop is left for the broker)`);
      const again = await c.call(
        'PUT',
        path,
        path.startsWith('/topics') ? { messageType: 'NORMAL' } : {},
      );
      t.equal(again.status, 503, `${path}: not created again while its drop waits`);
      t.match(again.body, { error: { code: 'Unavailable', message: /still to be dropped/ } });
    }

    fs.rmSync(filler);
    await until('the names can be created again', async () => {
      const res = await c.call('PUT', '/topics/orders', { messageType: 'NORMAL', queueCount: 2 });
      return res.status === 201;
    });
    await until('the group too', async () => {
      return (await c.call('PUT', '/groups/billing', {})).status === 201;
    });
    await until('the delayed topic too', async () => {
      const res = await c.call('PUT', '/topics/later', { messageType: 'DELAY', queueCount: 2 });
      return res.status === 201;
    });
    t.same(await c.receive('orders', 'billing'), [], 'none of the deleted topic’s messages');
    t.same(await c.receive('orders', 'keeper'), [], 'nor its re-sent dead letter');
    const byTime = await c.call('GET', `/topics/orders/messages?from=0&to=${Date.now() + 1000}`);
    t.same(byTime.body?.messages, [], 'none found by time');
    const [fresh] = await c.publish('orders', [{ body: 'new', dedupId: 'd3' }]);
    t.notOk((fresh as { duplicate?: boolean }).duplicate, 'an old dedupId is not a duplicate');
    const got = await drain(c, 'orders', 'billing', 1);
    t.same(
      got.map((m) => m.body),
      ['new'],
      'the new topic’s message only',
    );
    t.same(
      (await drain(c, 'orders', 'keeper', 1)).map((m) => m.body),
      ['new'],
      'the group that stayed: the new message only',
    );
    const deadLetters = await c.call('GET', '/groups/billing/dead-letters');
    t.same(deadLetters.body?.messages, [], 'the new group has no dead letters');
    // the deleted delayed messages come due (3 s after their publish): none reaches the new
    // topic, whose receive waits past that time
    t.same(await c.receive('later', 'billing', 4), [], 'no deleted delayed message delivered');
  },
);
