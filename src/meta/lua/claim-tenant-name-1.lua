--[[
  Claim a tenant name held by a claim whose tenant is gone, unless the claim changed meanwhile.
  KEYS[1] hash tenant name -> tenantId
  ARGV[1] name   ARGV[2] the holder seen ('' for none)   ARGV[3] the claiming tenantId
  Returns 1 when claimed, 0 when another creation holds it now.
]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current == false and ARGV[2] ~= '') or (current ~= false and current ~= ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
