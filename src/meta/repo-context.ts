// What every repository needs: the connection, the key builder and the script runner, and the
// two reads they all make of a hash of records, each record checked by its schema (records.ts).
import type { Redis } from 'ioredis';
import type { MetaKeys } from './keys.js';
import { decodeRecord, type RecordSchema } from './records.js';
import type { ScriptRunner } from './scripts.js';

export interface RepoContext {
  redis: Redis;
  keys: MetaKeys;
  scripts: ScriptRunner;
}

/** The record in field `field` of the hash `key`, or null. */
export async function readHashRecord<T>(
  ctx: RepoContext,
  schema: RecordSchema<T>,
  key: string,
  field: string,
): Promise<T | null> {
  const json = await ctx.redis.hget(key, field);
  return json === null ? null : decodeRecord(schema, json, { key, field });
}

/** Every record of the hash `key`, unordered. */
export async function readHashRecords<T>(
  ctx: RepoContext,
  schema: RecordSchema<T>,
  key: string,
): Promise<T[]> {
  const entries = Object.entries(await ctx.redis.hgetall(key));
  return entries.map(([field, json]) => decodeRecord(schema, json, { key, field }));
}
