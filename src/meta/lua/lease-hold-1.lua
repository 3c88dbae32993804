--[[
  Takes a lease that is free, or renews one the caller holds (SET NX PX, or PEXPIRE when it is
  the holder's): one holder at a time, and a holder that dies loses it after its TTL.
  KEYS[1] lease key
  ARGV[1] holder id   ARGV[2] ttl ms
  Returns 1 when the caller holds the lease now, 0 when another holder does.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
