-- redis_remove.lua removes members the server decided to remove
-- (connection closed, Grace over, node dead), each with its synthesized
-- LEAVE, but only those still exactly as Go read them: a member changed or
-- removed meanwhile (by its client, a Claim, or another node's sweeper)
-- is left alone. So two nodes sweeping at once never both announce a LEAVE.
--
-- KEYS[1] members hash, KEYS[2] meta hash, KEYS[3] history list,
-- KEYS[4] lost hash: connId -> remembered until (ms)
-- KEYS[5] the channel's serial counter (see redis_apply.lua)
-- ARGV[1] history size, ARGV[2] history TTL in ms, ARGV[3] PubSub channel,
-- ARGV[4] lost until (ms), ARGV[5] now (ms, to prune the lost hash)
-- then five per member, from ARGV[6]: field, member JSON as read, meta as
-- read, LEAVE event JSON, "1" to remember the connection as lost.
--
-- Returns the connIds of the members removed, one per member.

local removed = {}
local lost = false
for i = 6, #ARGV, 5 do
  local field = ARGV[i]
  if redis.call("HGET", KEYS[1], field) == ARGV[i + 1]
      and redis.call("HGET", KEYS[2], field) == ARGV[i + 2] then
    redis.call("HDEL", KEYS[1], field)
    redis.call("HDEL", KEYS[2], field)
    local serial = redis.call("INCR", KEYS[5])
    if serial == 1 then
      local t = redis.call("TIME")
      serial = tonumber(t[1]) * 1000000 + tonumber(t[2])
      redis.call("SET", KEYS[5], string.format("%d", serial))
    end
    local payload = string.format("%d", serial) .. " " .. ARGV[i + 3]
    redis.call("LPUSH", KEYS[3], payload)
    redis.call("PUBLISH", ARGV[3], payload)
    local conn = string.sub(field, 1, string.find(field, "\0", 1, true) - 1)
    if ARGV[i + 4] == "1" then
      redis.call("HSET", KEYS[4], conn, ARGV[4])
      lost = true
    end
    removed[#removed + 1] = conn
  end
end
if #removed > 0 then
  redis.call("LTRIM", KEYS[3], 0, tonumber(ARGV[1]) - 1)
  redis.call("PEXPIRE", KEYS[3], ARGV[2])
  redis.call("PEXPIRE", KEYS[5], ARGV[2])
end
if lost then
  -- Forget connections remembered past their time; a channel sees few.
  local all = redis.call("HGETALL", KEYS[4])
  local now = tonumber(ARGV[5])
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) <= now then
      redis.call("HDEL", KEYS[4], all[i])
    end
  end
  redis.call("PEXPIRE", KEYS[4], tonumber(ARGV[4]) - now)
end
return removed
