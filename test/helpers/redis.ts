// Test harness: one private redis-server per test file, on a free port, files in a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startRedisServer, type RedisServerHandle } from '../../src/meta/redis-server.js';

export async function startTestRedis(t: Test): Promise<RedisServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-redis-'));
  const server = await startRedisServer({ dir });
  t.teardown(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}
