--[[
  Ends a rebuild: the wheel holds every pending entry up to ARGV[2] and may be claimed from.
  KEYS[1] wheel mark
  ARGV[1] wheelId   ARGV[2] the last logOffset the rebuild scheduled (decimal; -1: none)
  Returns 1; -7 when the wheel is not the caller's (flushed or reset again meanwhile).
]]
if redis.call('HGET', KEYS[1], 'wheelId') ~= ARGV[1] then return -7 end
local mark = tonumber(redis.call('HGET', KEYS[1], 'scheduledLogOffset') or '-1')
if tonumber(ARGV[2]) > mark then redis.call('HSET', KEYS[1], 'scheduledLogOffset', ARGV[2]) end
redis.call('HSET', KEYS[1], 'state', 'ready')
return 1
