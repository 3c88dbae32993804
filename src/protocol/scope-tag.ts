// A short, stable fingerprint of a scope (tenant/instance/topic[/group…]) carried inside ids and
// handles, so an id presented under another scope is rejected before any lookup. Not the only
// check: the broker also compares the record's own topic. Cached: scopes repeat on every call.
import { createHash } from 'node:crypto';

const CACHE_LIMIT = 10_000;
const cache = new Map<string, Buffer>();

/** First 8 bytes of SHA-256(scope). */
export function scopeTag(scope: string): Buffer {
  let tag = cache.get(scope);
  if (tag === undefined) {
    tag = createHash('sha256').update(scope).digest().subarray(0, 8);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(scope, tag);
  }
  return tag;
}
