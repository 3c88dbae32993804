--[[
  Claims due entries of a broker's wheel, earliest first, under a lease: first those whose lease
  ran out (their dispatcher died), then pending ones due by ARGV[3]. A claimed entry stays in the
  claimed zset until completed, so a broker killed mid-dispatch gets it again after the lease.
  KEYS[1] wheel mark   KEYS[2] pending zset (member hex logOffset, score deliverAtMs)
  KEYS[3] claimed zset (member `<logOffsetHex>:<deliverAtMsHex>`, score lease deadline)
  ARGV[1] wheelId   ARGV[2] nowMs   ARGV[3] claim pending entries due up to this ms
  ARGV[4] max entries   ARGV[5] lease deadline ms
  Returns {reclaimed count, claimed members...}: the first `reclaimed` members are re-leased ones;
  -7 when the wheel is not the caller's, -8 while it is being rebuilt.
]]
local mark = redis.call('HMGET', KEYS[1], 'wheelId', 'state')
if mark[1] ~= ARGV[1] then return -7 end
if mark[2] ~= 'ready' then return -8 end
local max = tonumber(ARGV[4])
local out = {0}
local expired = redis.call('ZRANGE', KEYS[3], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, max)
for i = 1, #expired do
  redis.call('ZADD', KEYS[3], ARGV[5], expired[i])
  out[#out + 1] = expired[i]
end
out[1] = #expired
local left = max - #expired
if left <= 0 then return out end
local due = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[3], 'BYSCORE', 'LIMIT', 0, left,
  'WITHSCORES')
local taken = {}
local leased = {}
for i = 1, #due, 2 do
  local member = due[i] .. ':' .. string.format('%x', tonumber(due[i + 1]))
  taken[#taken + 1] = due[i]
  leased[#leased + 1] = ARGV[5]
  leased[#leased + 1] = member
  out[#out + 1] = member
end
if #taken > 0 then
  for first = 1, #taken, 1000 do
    local last = math.min(first + 999, #taken)
    redis.call('ZREM', KEYS[2], unpack(taken, first, last))
    redis.call('ZADD', KEYS[3], unpack(leased, 2 * first - 1, 2 * last))
  end
end
return out
