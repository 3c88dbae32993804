--[[
  Create or replace an alarm of an instance that exists, compared and set against the record the
  caller read (its sealed webhook secret and createdAt are kept from it), so that an alarm is
  never written after its instance's deletion took the alarms hash (it would stay for ever).
  KEYS[1] instances hash   KEYS[2] alarms hash
  ARGV[1] instanceId   ARGV[2] alarmId   ARGV[3] record JSON
  ARGV[4] the record the caller read ('' when there was none)
  ARGV[5] the most alarms an instance may have (a creation past it is refused)
  Returns 1 created, 0 replaced; -2 instance missing; -3 the instance has the most alarms;
  -7 the record changed since it was read.
]]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -2 end
local existing = redis.call('HGET', KEYS[2], ARGV[2]) or ''
if existing ~= ARGV[4] then return -7 end
if existing == '' and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then return -3 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if existing == '' then return 1 end
return 0
