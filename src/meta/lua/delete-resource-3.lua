--[[
  Delete a topic or a group, give its count back to the tenant's quota and keep the deleted record
  until its brokers have taken the drop (the gateway forgets it then): a delete whose answer was
  lost (its deadline passed while Redis stalled, and Redis ran it after) is finished by the next
  DELETE or create of the name, which find the record here.
  KEYS[1] resource hash (topics or groups)   KEYS[2] counts hash   KEYS[3] deleted records hash
  ARGV[1] name   ARGV[2] counter field (topics|groups)   ARGV[3] field in KEYS[3]
  Returns the deleted record JSON, or false when there was none.
]]
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
redis.call('HSET', KEYS[3], ARGV[3], existing)
return existing
