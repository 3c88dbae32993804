--[[
  Forgets a deleted record once its drop was taken by its brokers (or left for them), under the
  claim of claim-deleted-3.lua: not when another call claimed it since (the caller's claim ran
  out while its drop was slow): that call forgets it when its own drop is answered.
  KEYS[1] deleted records hash   KEYS[2] claim key
  ARGV[1] field in KEYS[1]   ARGV[2] claimant token   ARGV[3] the record JSON that was dropped
  Returns 1 when forgotten (or already gone), 0 when another call holds the claim.
]]
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return 0 end
if holder then redis.call('DEL', KEYS[2]) end
-- a record deleted again since (another incarnation) is not the one dropped: kept
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[3] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
