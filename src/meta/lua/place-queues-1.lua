--[[
  Places a topic's queues that have no broker yet, each on the live broker holding the fewest
  queues (the caller passes the loads; the broker listed first wins a tie), and answers the whole
  placement. Queues already placed keep their broker, so concurrent gateways agree.
  KEYS[1] the topic's placement hash (queueId → brokerId)
  ARGV[1] queueCount   ARGV[2..] brokerId, load, brokerId, load, …
  Returns {brokerId of queue 0, …, brokerId of queue queueCount-1, newly placed brokerId…};
  -9 when a queue needs a broker and none is live.
]]
local count = tonumber(ARGV[1])
local ids, loads = {}, {}
for i = 2, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  loads[#loads + 1] = tonumber(ARGV[i + 1])
end
local placement, placed = {}, {}
for q = 0, count - 1 do
  local broker = redis.call('HGET', KEYS[1], tostring(q))
  if not broker then
    if #ids == 0 then return -9 end
    local best = 1
    for i = 2, #ids do
      if loads[i] < loads[best] then best = i end
    end
    broker = ids[best]
    loads[best] = loads[best] + 1
    redis.call('HSET', KEYS[1], tostring(q), broker)
    placed[#placed + 1] = tonumber(broker)
  end
  placement[#placement + 1] = tonumber(broker)
end
for _, broker in ipairs(placed) do placement[#placement + 1] = broker end
return placement
