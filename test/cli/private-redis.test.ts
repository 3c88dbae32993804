// The private redis-server that `npm start` launches (WHARF_REDIS_URL=private, or no Redis
// configured or answering) keeps tenants and keys across restarts of the node: it persists in
// the data dir (issue #8, defect 7).
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/cli/config.js';
import { startNode } from '../../src/cli/node.js';
import { adminFetch, json, provisionTenant, signedFetch } from '../helpers/wharf.js';

t.test('tenants and keys survive a restart of the node and its private Redis', async (t) => {
  const dataDir = t.testdir();
  const config = loadConfig({
    WHARF_PORT: '0',
    WHARF_DATA_DIR: dataDir,
    WHARF_REDIS_URL: 'private',
    WHARF_MIN_FREE_DISK_MB: '0',
    WHARF_DOCS: 'false',
  });
  const logger = pino({ level: 'silent' });
  const first = await startNode(config, logger);
  t.teardown(() => first.stop());
  t.equal(first.redisSource, 'private');
  const wharf = { url: first.url, adminToken: first.adminToken };
  const tenant = await provisionTenant(wharf);
  await first.stop();
  t.ok(existsSync(join(dataDir, 'redis', 'appendonlydir')), 'an append-only file in the data dir');

  const second = await startNode(config, logger);
  t.teardown(() => second.stop());
  const again = { url: second.url, adminToken: second.adminToken };
  const got = await adminFetch(again, 'GET', `/admin/v1/tenants/${tenant.tenantId}`);
  t.equal(got.status, 200, 'the tenant is still there');
  t.equal((await json(got)).tenantId, tenant.tenantId);
  const listed = await signedFetch(again.url, {
    path: '/v1/instances',
    ak: tenant.accessKeyId,
    sk: tenant.accessKeySecret,
  });
  t.equal(listed.status, 200, 'its access key still works');
  t.match(await json(listed), { instances: [{ instanceId: tenant.instanceId }] });
  await second.stop(); // before tap removes the data dir
});
