--[[
  A broker takes its id back from a holder that stopped renewing (its own crashed predecessor):
  only while the lease still holds that very owner token.
  KEYS[1] the id's lease
  ARGV[1] the holder's owner token   ARGV[2] the caller's owner token   ARGV[3] lease TTL ms
  Returns 1 taken; 0 when the lease changed meanwhile (renewed by another, released, taken).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
