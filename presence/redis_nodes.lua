-- redis_nodes.lua keeps the nodes' leases, in one hash of node id ->
-- lease end (ms), timed by Redis's own clock so nodes' clocks may differ.
--
-- KEYS[1] nodes hash
-- ARGV[1] "renew" (a node's own lease), "grant" (a lease for a node the
-- hash does not know, e.g. after Redis lost it: if the node is alive it
-- renews it, if not it expires and its members are swept) or "list"
-- ARGV[2] renew/grant: the node; list: forget leases ended this long ago (ms)
-- ARGV[3] renew/grant: the lease (ms)
--
-- list returns {dead nodes, live nodes}; the others return 1.

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == "renew" then
  redis.call("HSET", KEYS[1], ARGV[2], string.format("%d", now + tonumber(ARGV[3])))
  return 1
elseif ARGV[1] == "grant" then
  redis.call("HSETNX", KEYS[1], ARGV[2], string.format("%d", now + tonumber(ARGV[3])))
  return 1
end
local dead, live = {}, {}
local all = redis.call("HGETALL", KEYS[1])
for i = 1, #all, 2 do
  local ends = tonumber(all[i + 1])
  if ends > now then
    live[#live + 1] = all[i]
  elseif ends < now - tonumber(ARGV[2]) then
    redis.call("HDEL", KEYS[1], all[i])
  else
    dead[#dead + 1] = all[i]
  end
end
return {dead, live}
