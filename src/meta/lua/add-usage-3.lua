--[[
  Add one flush's counts of one instance and hour to its usage bucket, at most once: a flush
  whose answer was lost (its deadline passed while Redis stalled, and Redis ran it after) is sent
  again under the same marker, and the marker says it was applied.
  KEYS[1] the bucket hash   KEYS[2] the tenant's usage-instances zset
  KEYS[3] the tenant's applied-flush markers (zset marker -> when applied, ms)
  ARGV[1] marker   ARGV[2] now (ms)   ARGV[3] instanceId   ARGV[4] hour (hours since the epoch)
  ARGV[5] bucket TTL (ms)   ARGV[6] bucket TTL (hours)   ARGV[7] how long markers are kept (ms)
  ARGV[8..] triples: counter, value, 'add' | 'set'
  Returns 1 when applied, 0 when the marker was applied before.
]]
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
local now = tonumber(ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[7])))
redis.call('PEXPIRE', KEYS[3], ARGV[7])
for i = 8, #ARGV, 3 do
  if ARGV[i + 2] == 'set' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
-- the index lives as long as its newest bucket; entries whose buckets have all expired go
local hour = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], 'GT', hour, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (hour - tonumber(ARGV[6])))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
