--[[
  Ends a rebuild: the wheel holds every pending entry up to ARGV[2] and may be claimed from.
  Refused when it holds fewer loaded entries than the rebuild loaded: a Redis that lost writes
  under the same id during the load (restarted from a snapshot or an AOF taken mid-load, a
  replica that missed them) would otherwise be marked complete without them.
  KEYS[1] wheel mark
  ARGV[1] wheelId   ARGV[2] the last logOffset the rebuild scheduled (decimal; -1: none)
  ARGV[3] the number of entries the rebuild's load calls carried
  Returns 1; -7 when the wheel is not the caller's (flushed or reset again meanwhile) or lost
  part of the load.
]]
if redis.call('HGET', KEYS[1], 'wheelId') ~= ARGV[1] then return -7 end
if tonumber(redis.call('HGET', KEYS[1], 'loaded') or '0') < tonumber(ARGV[3]) then return -7 end
local mark = tonumber(redis.call('HGET', KEYS[1], 'scheduledLogOffset') or '-1')
if tonumber(ARGV[2]) > mark then redis.call('HSET', KEYS[1], 'scheduledLogOffset', ARGV[2]) end
redis.call('HSET', KEYS[1], 'state', 'ready')
return 1
