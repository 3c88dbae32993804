--[[
  Create an instance of a tenant, its name unique within the tenant, with its data key: made
  with the instance (not at its first publish), so that a Redis backup holding the instance holds
  the key that seals its bodies too.
  KEYS[1] tenant record   KEYS[2] instances hash   KEYS[3] instance-names hash   KEYS[4] data key
  ARGV[1] instanceId      ARGV[2] name             ARGV[3] instance JSON         ARGV[4] sealed key
  Returns 1 created; -1 tenant missing; -6 name taken.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[1]) == 0 then return -6 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SET', KEYS[4], ARGV[4], 'NX')
return 1
