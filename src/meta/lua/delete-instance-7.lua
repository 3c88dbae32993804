--[[
  Delete an instance with all its topics, groups and alarms, giving their counts back, and its
  data key (its sealed message bodies become unreadable in the same step).
  KEYS[1] instances hash   KEYS[2] instance-names hash   KEYS[3] topics hash   KEYS[4] groups hash
  KEYS[5] counts hash      KEYS[6] alarms hash           KEYS[7] data key
  ARGV[1] instanceId
  Returns {instance JSON, {topic JSON...}, {group JSON...}}, or false when there was none.
]]
local instance = redis.call('HGET', KEYS[1], ARGV[1])
if not instance then return false end
local topics = redis.call('HVALS', KEYS[3])
local groups = redis.call('HVALS', KEYS[4])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], cjson.decode(instance).name)
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6], KEYS[7])
if #topics > 0 then redis.call('HINCRBY', KEYS[5], 'topics', -#topics) end
if #groups > 0 then redis.call('HINCRBY', KEYS[5], 'groups', -#groups) end
return {instance, topics, groups}
