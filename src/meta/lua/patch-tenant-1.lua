--[[
  Change a tenant's status and/or quotas (quota fields given replace the stored ones).
  KEYS[1] tenant record
  ARGV[1] new status or ''   ARGV[2] quotas JSON object or ''
  Returns the updated tenant JSON; -1 tenant missing.
]]
local json = redis.call('GET', KEYS[1])
if not json then return -1 end
if ARGV[1] == '' and ARGV[2] == '' then return json end
local tenant = cjson.decode(json)
if ARGV[1] ~= '' then tenant.status = ARGV[1] end
if ARGV[2] ~= '' then
  for k, v in pairs(cjson.decode(ARGV[2])) do tenant.quotas[k] = v end
end
local updated = cjson.encode(tenant)
redis.call('SET', KEYS[1], updated)
return updated
