--[[
  Record what an evaluation or a webhook delivery found for an alarm — its new evaluation state,
  an event of its history, or both — only while that alarm exists: the same one (its createdAt),
  not one deleted meanwhile, nor one created again under its id. Written after the deletion, the
  state would come back (and a new alarm of that id would start from it) and so would the history.
  KEYS[1] alarms hash   KEYS[2] alarm-states hash   KEYS[3] the alarm's history list
  ARGV[1] alarmId   ARGV[2] the alarm's createdAt   ARGV[3] state JSON, or '' for none
  ARGV[4] history event JSON, or '' for none   ARGV[5] history length kept   ARGV[6] history TTL ms
  Returns 1 recorded; 0 the alarm is gone (nothing written).
]]
local alarm = redis.call('HGET', KEYS[1], ARGV[1])
if not alarm or tonumber(cjson.decode(alarm).createdAt) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
if ARGV[4] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[4])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return 1
