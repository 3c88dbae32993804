--[[
  Gives every claimed entry back to the pending zset at its due time: a restarting broker (the
  only owner of its wheel, by its data-dir lock) need not wait for the leases of its last life.
  KEYS[1] wheel mark   KEYS[2] pending zset   KEYS[3] claimed zset
  ARGV[1] wheelId
  Returns the number of entries released; -7 when the wheel is not the caller's.
]]
if redis.call('HGET', KEYS[1], 'wheelId') ~= ARGV[1] then return -7 end
local claimed = redis.call('ZRANGE', KEYS[3], 0, -1)
for i = 1, #claimed do
  local sep = string.find(claimed[i], ':', 1, true)
  local member = string.sub(claimed[i], 1, sep - 1)
  local deliverAtMs = tonumber(string.sub(claimed[i], sep + 1), 16)
  redis.call('ZADD', KEYS[2], string.format('%.0f', deliverAtMs), member)
end
redis.call('DEL', KEYS[3])
return #claimed
