--[[
  Claims the finishing of a delete (its brokers' drop) before the drop is sent: one call at a
  time, so that the deleted record is forgotten — and the name may be created again
  (put-resource-5.lua refuses while the record is kept) — only after every drop of it sent has
  been answered. Without the claim, a DELETE retried on one gateway could read the record, a
  create on another finish the drop, forget it, create the name and store messages, and then
  the first drop land and delete them.
  KEYS[1] resource hash (topics or groups)   KEYS[2] deleted records hash   KEYS[3] claim key
  ARGV[1] name   ARGV[2] field in KEYS[2]   ARGV[3] claimant token   ARGV[4] claim ttl ms
  Returns the deleted record JSON (claimed: the caller drops it, then forget-deleted-2.lua),
  0 when there is none, -1 when a record of the name exists (created again by a gateway of an
  earlier version, which kept no deleted records), -2 when another call holds the claim.
]]
local deleted = redis.call('HGET', KEYS[2], ARGV[2])
if not deleted then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[3] then return -2 end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
return deleted
