--[[
  Gives claimed batches back to the pending zset at their due times, one page per call: a
  restarting broker (the only owner of its wheel, by its data-dir lock) need not wait for the
  leases of its last life. Bounded work per call: about ARGV[3] claims (HSCAN's COUNT hint; a
  claim holds at most MAX_CLAIM entries); the caller loops with the returned cursor until it is 0.
  KEYS[1] wheel mark   KEYS[2] pending zset   KEYS[3] claims hash   KEYS[4] leases zset
  ARGV[1] wheelId   ARGV[2] HSCAN cursor of the claims hash ('0' to start)   ARGV[3] claims a call
  Returns {next cursor ('0': done), entries released by this call}; -7 when the wheel is not the
  caller's.
]]
if redis.call('HGET', KEYS[1], 'wheelId') ~= ARGV[1] then return -7 end
local page = redis.call('HSCAN', KEYS[3], ARGV[2], 'COUNT', ARGV[3])
local fields = page[2]
local released = 0
for i = 1, #fields, 2 do
  local args = {}
  for member, score in string.gmatch(fields[i + 1], '([^,]+),([^,]+)') do
    args[#args + 1] = score
    args[#args + 1] = member
  end
  for first = 1, #args, 2000 do
    redis.call('ZADD', KEYS[2], unpack(args, first, math.min(first + 1999, #args)))
  end
  redis.call('HDEL', KEYS[3], fields[i])
  redis.call('ZREM', KEYS[4], fields[i])
  released = released + #args / 2
end
return {page[1], released}
