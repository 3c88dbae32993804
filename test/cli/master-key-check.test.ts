// A process started with another WHARF_MASTER_KEY than its Redis's metadata was sealed with
// stops at start, saying so, instead of answering every signed call 500 (no secret opens).
import t from 'tap';
import { pino } from 'pino';
import { openMeta } from '../../src/cli/broker-setup.js';
import { loadConfig } from '../../src/cli/config.js';
import { StartupError } from '../../src/cli/startup-error.js';
import { startTestRedis } from '../helpers/redis.js';

t.test('the master key is checked against what the metadata was sealed with', async (t) => {
  const redis = await startTestRedis(t);
  const config = loadConfig({});
  const logger = pino({ level: 'silent' });
  const first = await openMeta(config, redis.url, 'k'.repeat(32), logger);
  await first.close();
  const again = await openMeta(config, redis.url, 'k'.repeat(32), logger);
  await again.close();
  await t.rejects(
    openMeta(config, redis.url, 'z'.repeat(32), logger),
    new StartupError(
      'WHARF_MASTER_KEY is not the key the metadata in this Redis was sealed with: no access key, ' +
        'token or stored body would open. Start with the key this Redis was used with',
    ),
  );
});
