// Loads the Lua scripts of lua/<name>-<numberOfKeys>.lua and runs them with EVALSHA, falling
// back to EVAL once when the server does not know the script (after a restart or FLUSH).
// Scripts answer negative numbers for expected refusals; `scriptError` turns them into errors.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { WharfError, type ErrorCode } from '../errors.js';

export type ScriptName =
  | 'create-instance'
  | 'put-resource'
  | 'put-alarm'
  | 'record-alarm'
  | 'delete-resource'
  | 'claim-deleted'
  | 'forget-deleted'
  | 'delete-instance'
  | 'create-data-key'
  | 'create-access-key'
  | 'patch-tenant'
  | 'claim-tenant-name'
  | 'wheel-schedule'
  | 'wheel-claim'
  | 'wheel-release'
  | 'wheel-reset'
  | 'wheel-ready'
  | 'broker-claim'
  | 'broker-renew'
  | 'broker-release'
  | 'broker-take-over'
  | 'dedup-mark'
  | 'add-usage'
  | 'place-queues'
  | 'lease-hold'
  | 'lease-release';

interface Script {
  lua: string;
  sha: string;
  numberOfKeys: number;
}

function luaDir(): string {
  // Next to this module (tap runs the sources; the build copies lua/ into dist), else the
  // sources seen from dist/src/meta.
  for (const rel of ['./lua/', '../../../src/meta/lua/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new WharfError('Internal', 'the Lua scripts of src/meta/lua are missing');
}

function loadScripts(): Map<string, Script> {
  const dir = luaDir();
  const scripts = new Map<string, Script>();
  for (const file of readdirSync(dir)) {
    const match = /^(.+)-(\d+)\.lua$/.exec(file);
    if (match === null) continue;
    const lua = readFileSync(`${dir}/${file}`, 'utf8');
    scripts.set(match[1], {
      lua,
      sha: createHash('sha1').update(lua).digest('hex'),
      numberOfKeys: Number(match[2]),
    });
  }
  return scripts;
}

let cached: Map<string, Script> | undefined;

export class ScriptRunner {
  private readonly scripts: Map<string, Script>;

  constructor(private readonly redis: Redis) {
    cached ??= loadScripts();
    this.scripts = cached;
  }

  async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    const script = this.scripts.get(name);
    if (script === undefined) throw new WharfError('Internal', `no Lua script ${name}`);
    if (keys.length !== script.numberOfKeys) {
      throw new WharfError('Internal', `${name} takes ${script.numberOfKeys} keys`);
    }
    try {
      return await this.redis.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(script.lua, keys.length, ...keys, ...args);
    }
  }
}

const SCRIPT_ERRORS: Record<number, [ErrorCode, string]> = {
  [-1]: ['TenantNotFound', 'tenant not found'],
  [-2]: ['InstanceNotFound', 'instance not found'],
  [-3]: ['QuotaExceeded', 'count quota reached'],
  [-4]: ['MessageTypeMismatch', 'the topic exists with another messageType'],
  [-5]: ['Conflict', 'the change is not allowed on an existing resource'],
  [-6]: ['AlreadyExists', 'a resource with this name exists'],
  [-7]: [
    'Conflict',
    "a FIFO topic's queueCount is fixed at creation: more queues would move sharding keys to " +
      'other queues, where their next messages would be delivered before the unacked ones',
  ],
};

/** The error for a script's negative answer, with a message naming the resource. */
export function scriptError(code: number, what: string): WharfError {
  const entry = SCRIPT_ERRORS[code];
  if (entry === undefined) return new WharfError('Internal', `script answered ${code}`);
  return new WharfError(entry[0], `${what}: ${entry[1]}`);
}
