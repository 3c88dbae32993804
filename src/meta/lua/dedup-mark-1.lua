--[[
  Marks a topic on a broker as having keyed publishes moved off it, until the end of its dedup
  window: the later of the mark's end and this one's. Past 1024 topics, the marks that ended are
  dropped. The hash lives as long as its longest mark.
  KEYS[1] the broker's marks (hash topic → end, epoch ms)
  ARGV[1] topic   ARGV[2] end of this mark   ARGV[3] now   ARGV[4] the window, ms
  Returns 1.
]]
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if redis.call('HLEN', KEYS[1]) > 1024 then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) <= tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], all[i]) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4], 'NX')
redis.call('PEXPIRE', KEYS[1], ARGV[4], 'GT')
return 1
