--[[
  Starts a rebuild: empties a broker's wheel and gives it a new id in the `building` state, in
  which schedules (the bulk load, and live publishes) are taken but claims are refused, so that
  nothing is dispatched out of order before the wheel holds every pending entry again. A broker
  that dies mid-rebuild finds `building` at its restart and rebuilds again.
  KEYS[1] wheel mark   KEYS[2] pending zset   KEYS[3] claims hash   KEYS[4] leases zset
  ARGV[1] the new wheelId
  Returns 1.
]]
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'wheelId', ARGV[1], 'scheduledLogOffset', '-1', 'state', 'building',
  'loaded', '0')
return 1
