--[[
  A broker takes its id back from an earlier run of its own data dir that stopped renewing (a
  crash): only while the lease is held by an owner token starting with the data dir's, and only
  once its time to live shows no renewal for a while — all read here, in one step, by Redis's
  clock (a holder renewing in between keeps it).
  KEYS[1] the id's lease
  ARGV[1] the data dir's token prefix   ARGV[2] the caller's owner token   ARGV[3] lease TTL ms
  ARGV[4] the most time to live a holder taken back may have left (ms)
  Returns 1 taken; 0 nobody holds it (claim it as usual); 2 an earlier run holds it and renewed
  lately (ask again); -8 another owner holds it.
]]
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder == ARGV[2] then return 1 end
if string.sub(holder, 1, #ARGV[1]) ~= ARGV[1] then return -8 end
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[4]) then return 2 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
