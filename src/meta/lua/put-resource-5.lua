--[[
  Idempotent PUT of a topic or a group, with the tenant's count quota checked atomically.
  KEYS[1] tenant record   KEYS[2] instances hash   KEYS[3] resource hash (topics or groups)
  KEYS[4] counts hash   KEYS[5] deleted records hash (delete-resource-3.lua)
  ARGV[1] instanceId   ARGV[2] name   ARGV[3] record JSON (createdAt = now)
  ARGV[4] counter field (topics|groups)   ARGV[5] quota field (maxTopics|maxGroups)
  ARGV[6] immutable field (messageType|deliveryMode)   ARGV[7] code when it differs (-4|-5)
  ARGV[8] spec: canonical JSON of the settable fields   ARGV[9] field that may only grow, or ''
  ARGV[10] '1': that field may not change at all (a FIFO topic's queueCount), else ''
  ARGV[11] the name's field in KEYS[5]
  Returns {status, record JSON}: 1 created, 0 unchanged, 2 updated (createdAt and incarnation
  kept);
  or a number: -1 tenant missing, -2 instance missing, -3 quota reached, -4 message type differs,
  -5 an immutable field differs or the growing field would shrink, -7 the fixed field differs,
  -8 a deleted record of the name is kept: its drop is not finished (claim-deleted-3.lua), and a
  drop still to land on its brokers would delete the new one's messages (they drop by name).
]]
local tenantJson = redis.call('GET', KEYS[1])
if not tenantJson then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -2 end
local existing = redis.call('HGET', KEYS[3], ARGV[2])
if not existing then
  if redis.call('HEXISTS', KEYS[5], ARGV[11]) == 1 then return -8 end
  local quota = tonumber(cjson.decode(tenantJson).quotas[ARGV[5]])
  local count = tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '0')
  if quota ~= nil and count >= quota then return -3 end
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
  return {1, ARGV[3]}
end
local old = cjson.decode(existing)
local new = cjson.decode(ARGV[3])
if old[ARGV[6]] ~= new[ARGV[6]] then return tonumber(ARGV[7]) end
if old.spec == ARGV[8] then return {0, existing} end
if ARGV[9] ~= '' then
  local was, wants = tonumber(old[ARGV[9]]), tonumber(new[ARGV[9]])
  if wants < was then return -5 end
  if ARGV[10] == '1' and wants ~= was then return -7 end
end
new.createdAt = old.createdAt
new.incarnation = old.incarnation
local updated = cjson.encode(new)
redis.call('HSET', KEYS[3], ARGV[2], updated)
return {2, updated}
