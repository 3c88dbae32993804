// The queue a sharding key picks: a stable hash shared by the broker (its own queue choice) and a
// cluster gateway (which picks the queue, and so the broker), so one key keeps one queue and its
// order either way. Changing it moves keys to other queues: it is frozen.

/** FNV-1a over UTF-16 code units: a stable hash of the sharding key (same key, same queue). */
export function shardingHash(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
