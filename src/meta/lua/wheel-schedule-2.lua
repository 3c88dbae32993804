--[[
  Adds a batch of delayed messages to a broker's wheel and raises its high-water mark. Refused when
  the wheel is not the caller's (flushed, or rebuilt under another id), or when its mark is below
  what the caller already put in it (a Redis restored from an older snapshot, or a replica that
  missed writes, under the same id): the broker then rebuilds it from its schedule records, so
  nothing is ever added to a wheel the broker no longer trusts. Without the second check, a batch
  fed after such a rollback would raise the mark past the entries the rollback lost, and the mark
  would no longer tell that they are missing.
  KEYS[1] wheel mark (hash wheelId, scheduledLogOffset, state)   KEYS[2] pending zset
  ARGV[1] wheelId   ARGV[2] highest logOffset of the batch (decimal; -1 leaves the mark as it is:
  a rebuild's load, whose mark finishRebuild sets, and which is counted in the mark's `loaded`
  so that finishRebuild can tell a load that a rollback undid in part)
  ARGV[3] the mark as the caller last set it (decimal; -1: it claims nothing)
  ARGV[4..] pairs of deliverAtMs, member (hex logOffset)
  Returns the number of entries that were not in the wheel yet; -7 when the wheel is not the
  caller's or is behind it.
]]
if redis.call('HGET', KEYS[1], 'wheelId') ~= ARGV[1] then return -7 end
local mark = tonumber(redis.call('HGET', KEYS[1], 'scheduledLogOffset') or '-1')
if mark < tonumber(ARGV[3]) then return -7 end
local added = 0
local chunk = 1000
for first = 4, #ARGV, 2 * chunk do
  local last = math.min(first + 2 * chunk - 1, #ARGV)
  added = added + redis.call('ZADD', KEYS[2], unpack(ARGV, first, last))
end
if ARGV[2] == '-1' then redis.call('HINCRBY', KEYS[1], 'loaded', (#ARGV - 3) / 2) end
if tonumber(ARGV[2]) > mark then redis.call('HSET', KEYS[1], 'scheduledLogOffset', ARGV[2]) end
return added
