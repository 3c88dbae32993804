--[[
  Gives every claimed batch back to the pending zset at its due times: a restarting broker (the
  only owner of its wheel, by its data-dir lock) need not wait for the leases of its last life.
  KEYS[1] wheel mark   KEYS[2] pending zset   KEYS[3] claims hash   KEYS[4] leases zset
  ARGV[1] wheelId
  Returns the number of entries released; -7 when the wheel is not the caller's.
]]
if redis.call('HGET', KEYS[1], 'wheelId') ~= ARGV[1] then return -7 end
local batches = redis.call('HVALS', KEYS[3])
local released = 0
for i = 1, #batches do
  local args = {}
  for member, score in string.gmatch(batches[i], '([^,]+),([^,]+)') do
    args[#args + 1] = score
    args[#args + 1] = member
  end
  for first = 1, #args, 2000 do
    redis.call('ZADD', KEYS[2], unpack(args, first, math.min(first + 1999, #args)))
  end
  released = released + #args / 2
end
redis.call('DEL', KEYS[3], KEYS[4])
return released
