--[[
  A broker stopping gives its lease up (its record stays: gateways show it down and its queues
  wait for it).
  KEYS[1] the id's lease
  ARGV[1] owner token
  Returns 1 released; 0 when the caller did not hold it.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
