--[[
  A broker's heartbeat: extends its lease. A lease that expired meanwhile (Redis was away longer
  than the TTL, or was flushed) is taken again when nobody else took it, and the record written
  again (not while ARGV[4] is empty: a broker still recovering is not registered yet).
  KEYS[1] the id's lease   KEYS[2] broker registry hash
  ARGV[1] brokerId   ARGV[2] owner token   ARGV[3] lease TTL ms   ARGV[4] record JSON or ''
  Returns 1 renewed; 2 taken again (the caller announces it); -8 another owner holds it.
]]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if holder then return -8 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
return 2
