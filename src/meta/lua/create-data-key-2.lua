--[[
  Make an instance's data key unless it has one; never for an instance that does not exist, so a
  publish racing the instance's deletion cannot bring a key back (delete-instance removes both).
  KEYS[1] instances hash   KEYS[2] data key
  ARGV[1] instanceId       ARGV[2] sealed new key
  Returns the sealed key in force; -2 when the instance does not exist.
]]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -2 end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return redis.call('GET', KEYS[2])
