--[[
  Claims due entries of a broker's wheel as one batch under a lease. A batch whose lease ran out
  (its dispatcher died mid-dispatch) is taken first, whole, under a new claim id; else up to
  ARGV[4] pending entries due by ARGV[3], earliest first. A batch is kept as one string until
  completed: a claim costs a range read and a rank removal, not a write per entry.
  KEYS[1] wheel mark   KEYS[2] pending zset (member hex logOffset, score deliverAtMs)
  KEYS[3] claims hash (claim id → `<logOffsetHex>,<deliverAtMs>,...`)
  KEYS[4] leases zset (claim id → lease deadline ms)
  ARGV[1] wheelId   ARGV[2] nowMs   ARGV[3] claim pending entries due up to this ms
  ARGV[4] max entries   ARGV[5] lease deadline ms
  Returns {claim id, reclaimed 0|1, batch}; {next} when nothing is due, next the earliest due
  time of a pending entry or lease deadline (ms, -1: none), so the caller need not ask again
  before then; -7 when the wheel is not the caller's, -8 while it is being rebuilt.
]]
local mark = redis.call('HMGET', KEYS[1], 'wheelId', 'state')
if mark[1] ~= ARGV[1] then return -7 end
if mark[2] ~= 'ready' then return -8 end
local expired = redis.call('ZRANGE', KEYS[4], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, 1)
local batch
local reclaimed = 0
if #expired == 1 then
  batch = redis.call('HGET', KEYS[3], expired[1])
  redis.call('HDEL', KEYS[3], expired[1])
  redis.call('ZREM', KEYS[4], expired[1])
  reclaimed = 1
end
if not batch then
  local due = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[3], 'BYSCORE', 'LIMIT', 0, ARGV[4],
    'WITHSCORES')
  if #due == 0 then
    local next = -1
    local pending = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if #pending == 2 then next = tonumber(pending[2]) end
    local lease = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    if #lease == 2 and (next < 0 or tonumber(lease[2]) < next) then next = tonumber(lease[2]) end
    return {next}
  end
  -- The due entries are the lowest-ranked ones: drop them by rank, no lookup per member.
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #due / 2 - 1)
  batch = table.concat(due, ',')
end
-- Prefixed by the wheel id: a late complete from before a rebuild never hits a new batch.
local claimId = ARGV[1] .. ':' .. redis.call('HINCRBY', KEYS[1], 'claimSeq', 1)
redis.call('HSET', KEYS[3], claimId, batch)
redis.call('ZADD', KEYS[4], ARGV[5], claimId)
return {claimId, reclaimed, batch}
