// A node whose broker holds messages of instances that Redis does not know (Redis restarted
// empty, or restored from an older backup: issue #8, defect 7) says so at start, once, naming
// them; a node whose metadata is whole says nothing.
import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/cli/config.js';
import { startNode } from '../../src/cli/node.js';
import { startTestRedis } from '../helpers/redis.js';
import { provisionTenant, signedFetch, type ProvisionedTenant } from '../helpers/wharf.js';

interface LogLine {
  level: number;
  msg: string;
  instances?: string[];
  count?: number;
}

function capturingLogger() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

const UNKNOWN = /instances unknown to Redis/;

t.test('a start warns once about instances the broker holds and Redis does not know', async (t) => {
  const redis = await startTestRedis(t);
  const config = loadConfig({
    WHARF_PORT: '0',
    WHARF_DATA_DIR: t.testdir(),
    WHARF_REDIS_URL: redis.url,
    WHARF_ADMIN_TOKEN: 'test-admin-token-0123456789',
    WHARF_MIN_FREE_DISK_MB: '0',
    WHARF_DOCS: 'false',
  });
  const start = async () => {
    const { logger, lines } = capturingLogger();
    const node = await startNode(config, logger);
    t.teardown(() => node.stop());
    return { node, lines };
  };

  const first = await start();
  const wharf = { url: first.node.url, adminToken: first.node.adminToken };
  const withMessages: ProvisionedTenant[] = [];
  for (let i = 0; i < 2; i++) {
    const tenant = await provisionTenant(wharf);
    const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
    const topic = `/v1/instances/${tenant.instanceId}/topics/orders`;
    t.equal(
      (
        await signedFetch(wharf.url, {
          method: 'PUT',
          path: topic,
          body: { messageType: 'NORMAL' },
          ...who,
        })
      ).status,
      201,
    );
    const published = await signedFetch(wharf.url, {
      method: 'POST',
      path: `${topic}/messages`,
      body: { messages: [{ body: 'kept on disk' }] },
      ...who,
    });
    t.equal(published.status, 200);
    withMessages.push(tenant);
  }
  await provisionTenant(wharf); // an instance without messages: nothing on the broker
  t.notOk(
    first.lines.some((l) => UNKNOWN.test(l.msg)),
    'no warning on a fresh node',
  );
  await first.node.stop();

  const second = await start();
  t.notOk(
    second.lines.some((l) => UNKNOWN.test(l.msg)),
    'no warning while Redis knows them all',
  );
  await second.node.stop();

  // Redis comes back empty: its data lost, the messages still on the broker's disk.
  const admin = new Redis(redis.url);
  await admin.flushall();
  admin.disconnect();
  const third = await start();
  const warnings = third.lines.filter((l) => UNKNOWN.test(l.msg));
  t.equal(warnings.length, 1, 'one warning');
  t.equal(warnings[0]?.level, 40, 'at warn level');
  t.same(
    [...(warnings[0]?.instances ?? [])].sort(),
    withMessages.map((w) => `${w.tenantId}/${w.instanceId}`).sort(),
    'naming exactly the instances with messages',
  );
  t.equal(warnings[0]?.count, 2);
  t.match(warnings[0]?.msg, /restore/i, 'saying what to do');
  t.equal((await fetch(`${third.node.url}/readyz`)).status, 200, 'and the node serves');
  await third.node.stop(); // before tap removes the data dir
});
