--[[
  A broker claims its id: the lease is taken only when nobody holds it (or the caller already
  does), then its record (address, owner) is written for the gateways — unless ARGV[4] is empty
  (a broker still recovering holds its id but is not routed to; it claims again with its record
  once it serves).
  KEYS[1] the id's lease   KEYS[2] broker registry hash
  ARGV[1] brokerId   ARGV[2] owner token   ARGV[3] lease TTL ms   ARGV[4] record JSON or ''
  Returns 1; -8 when another owner holds the lease (a live broker has this id).
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[2] then return -8 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
return 1
