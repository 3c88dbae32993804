--[[
  Delete a topic or a group and give its count back to the tenant's quota.
  KEYS[1] resource hash (topics or groups)   KEYS[2] counts hash
  ARGV[1] name   ARGV[2] counter field (topics|groups)
  Returns the deleted record JSON, or false when there was none.
]]
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
return existing
