--[[
  Store a new access key of a tenant (the global id → tenant index is written by the caller
  afterwards: a key is usable only once both exist).
  KEYS[1] tenant record   KEYS[2] access-keys hash
  ARGV[1] accessKeyId     ARGV[2] access key JSON
  Returns 1 created; -1 tenant missing.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
