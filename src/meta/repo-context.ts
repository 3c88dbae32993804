// What every repository needs: the connection, the key builder and the script runner.
import type { Redis } from 'ioredis';
import type { MetaKeys } from './keys.js';
import type { ScriptRunner } from './scripts.js';

export interface RepoContext {
  redis: Redis;
  keys: MetaKeys;
  scripts: ScriptRunner;
}
