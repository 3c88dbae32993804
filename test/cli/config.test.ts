import t from 'tap';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/cli/config.js';
import { banner } from '../../src/cli/banner.js';
import { loadOrCreateSecret, redisAnswers } from '../../src/cli/node.js';
import { freePort } from '../../src/meta/index.js';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

t.test('defaults', async (t) => {
  t.match(loadConfig({}), {
    port: 8080,
    host: '127.0.0.1',
    dataDir: './data',
    region: 'local',
    redisUrl: undefined,
    logLevel: 'info',
    metaCacheMs: 4000,
    redisTimeoutMs: 1000,
    bodiesInFlightBytes: 128 * 1024 * 1024,
    maxConnectionsPerAddress: 256,
    trustProxy: false,
    docs: true,
    stopOnStdinClose: false,
  });
});

t.test('every problem is reported, one line each', async (t) => {
  try {
    loadConfig({
      WHARF_PORT: '99999',
      WHARF_REGION: 'Bad Region',
      WHARF_REDIS_URL: 'http://x',
      WHARF_ADMIN_TOKEN: 'short',
      WHARF_MASTER_KEY: 'short',
      WHARF_ADMIN_JWT_SECRET: 'short',
      WHARF_ADMIN_JWKS_URL: 'ftp://x',
      WHARF_LOG_LEVEL: 'loud',
      WHARF_META_CACHE_MS: '9000',
      WHARF_TRUST_PROXY: 'maybe',
    });
    t.fail('should throw');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.equal((err as ConfigError).problems.length, 10);
    t.match((err as ConfigError).message, /WHARF_PORT=99999: must be an integer from 0 to 65535/);
  }
  t.match(
    loadConfig({
      WHARF_REDIS_URL: 'private',
      WHARF_TRUST_PROXY: 'yes',
      WHARF_DOCS: 'off',
      WHARF_PORT: '0',
      WHARF_STOP_ON_STDIN_CLOSE: 'true',
    }),
    { redisUrl: 'private', trustProxy: true, docs: false, port: 0, stopOnStdinClose: true },
  );
});

t.test('broker settings: flush policy, segments, retention, disk watermark', async (t) => {
  t.match(loadConfig({}).broker, {
    flushPolicy: 'sync',
    segmentBytes: 1024 * 1024 * 1024,
    retentionMs: 72 * 3_600_000,
    minFreeDiskBytes: 1024 * 1024 * 1024,
    transactionCheckDelayMs: 10_000,
    maxInflightPerTenant: 200_000,
  });
  t.match(
    loadConfig({
      WHARF_FLUSH: 'async',
      WHARF_FLUSH_INTERVAL_MS: '50',
      WHARF_SEGMENT_MB: '64',
      WHARF_RETENTION_HOURS: '1',
      WHARF_MIN_FREE_DISK_MB: '0',
      WHARF_TRANSACTION_CHECK_DELAY_MS: '2500',
      WHARF_MAX_INFLIGHT_PER_TENANT: '1000',
    }).broker,
    {
      flushPolicy: 'async',
      asyncFlushIntervalMs: 50,
      segmentBytes: 64 * 1024 * 1024,
      retentionMs: 3_600_000,
      minFreeDiskBytes: 0,
      transactionCheckDelayMs: 2500,
      maxInflightPerTenant: 1000,
    },
  );
  const problems = (() => {
    try {
      loadConfig({
        WHARF_FLUSH: 'sometimes',
        WHARF_SEGMENT_MB: '0',
        // past 4 GiB the ring is more than a Node 20 Buffer can be
        WHARF_BODY_CACHE_MB: '8192',
        WHARF_TRANSACTION_CHECK_DELAY_MS: '50',
      });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  })();
  t.same(problems, [
    'WHARF_FLUSH=sometimes: must be sync or async',
    'WHARF_SEGMENT_MB=0: must be an integer from 1 to 4096',
    'WHARF_BODY_CACHE_MB=8192: must be an integer from 0 to 4096',
    'WHARF_TRANSACTION_CHECK_DELAY_MS=50: must be an integer from 100 to 3600000',
  ]);
});

t.test('the README documents every variable', async (t) => {
  const readme = readFileSync('README.md', 'utf8');
  for (const [name] of CONFIG_VARIABLES) t.match(readme, `\`${name}\``, name);
});

t.test('secrets in the data dir are generated once, private', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'admin.token');
  const first = loadOrCreateSecret(path, 16);
  t.equal(loadOrCreateSecret(path, 16), first);
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(readdirSync(dir), ['admin.token'], 'no temporary file left');
  t.throws(() => loadOrCreateSecret(join(dir, 'missing', 'x'), 16));
});

t.test(
  'a secret file cut short (a crash, a hand) stops the start, never becomes the key',
  async (t) => {
    const dir = t.testdir({ 'master.key': '', 'short.key': 'abc\n' });
    for (const name of ['master.key', 'short.key']) {
      t.throws(
        () => loadOrCreateSecret(join(dir, name), 32),
        { name: 'Error', message: /fewer than 32: it is damaged/ },
        name,
      );
    }
    t.equal(readFileSync(join(dir, 'master.key'), 'utf8'), '', 'left as it was');
  },
);

t.test('redis probe', async (t) => {
  t.equal(await redisAnswers('127.0.0.1', await freePort(), 200), false);
});

t.test('banner', async (t) => {
  const text = banner({
    url: 'http://127.0.0.1:8080',
    adminToken: 'tok',
    adminTokenSource: 'data dir',
    redisUrl: 'redis://x',
    redisSource: 'private',
  });
  t.match(text, 'Wharf is listening on http://127.0.0.1:8080');
  t.match(text, 'Bearer tok');
  t.match(
    banner({
      url: 'u',
      adminToken: 'tok',
      adminTokenSource: 'env',
      redisUrl: 'r',
      redisSource: 'configured',
    }),
    '$WHARF_ADMIN_TOKEN',
  );
});
