-- redis_conn.lua changes the meta of one connection's members on one
-- channel: DetachConnection starts their Grace, Claim makes them live on
-- the claiming node and says whether the connection's members here were
-- removed for being gone too long.
--
-- KEYS[1] meta hash, KEYS[2] lost hash
-- ARGV[1] "detach" or "claim"
-- ARGV[2] the connection's field prefix "<connId>\0"
-- ARGV[3] detach: detached-until (ms); claim: the claiming node
-- ARGV[4] the connId, ARGV[5] now (ms), ARGV[6] the detaching node
--
-- Returns {members of the connection here, 1 if it was remembered as lost}.

local all = redis.call("HGETALL", KEYS[1])
local prefix = ARGV[2]
local n = 0
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #prefix) == prefix then
    n = n + 1
    local owner, det = string.match(all[i + 1], "^(.*)|(%d+)$")
    if ARGV[1] == "detach" then
      -- A second drop keeps the first deadline, and a node whose transport
      -- noticed the drop late leaves alone a connection that already
      -- resumed on another node.
      if det == "0" and owner == ARGV[6] then
        redis.call("HSET", KEYS[1], all[i], owner .. "|" .. ARGV[3])
      end
    else
      redis.call("HSET", KEYS[1], all[i], ARGV[3] .. "|0")
    end
  end
end
local lost = 0
if ARGV[1] == "claim" then
  local until_ms = redis.call("HGET", KEYS[2], ARGV[4])
  if until_ms then
    redis.call("HDEL", KEYS[2], ARGV[4])
    if tonumber(until_ms) > tonumber(ARGV[5]) then
      lost = 1
    end
  end
end
return {n, lost}
