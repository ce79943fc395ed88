-- lease.lua: takes up to ARGV[3] sessions whose expiry (score, ms) is at or
-- before ARGV[1] from the schedule KEYS[1] and pushes each one's score to
-- ARGV[2], the end of the caller's lease. One atomic step, so two nodes
-- sweeping at once never take the same session; a node that dies mid-sweep
-- leaves its sessions to be taken again when the lease ends.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids
