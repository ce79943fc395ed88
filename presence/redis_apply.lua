-- redis_apply.lua applies one client change to a channel's members and
-- announces it, atomically: the member hashes, the presence history and
-- the PUBLISH change together, so every node's subscribers see a
-- channel's events in the order they were applied, and history agrees.
--
-- KEYS[1] members hash: field "<connId>\0<clientId>" -> member JSON
-- KEYS[2] meta hash: same field -> "<owner node>|<detached until, ms; 0 live>"
-- KEYS[3] history list, newest first, of "<serial> <event JSON>"
-- KEYS[4] the channel's serial counter (see serial below)
-- ARGV[1] field
-- ARGV[2] "set" (ENTER/UPDATE) or "del" (LEAVE)
-- ARGV[3] set: the member JSON; del: the member JSON Go read (compare and delete)
-- ARGV[4] set: the meta value
-- ARGV[5] event JSON
-- ARGV[6] history size, ARGV[7] history TTL in ms, ARGV[8] PubSub channel
--
-- Returns 1 applied, 0 a LEAVE of an absent member (nothing changed),
-- -1 a LEAVE of a member changed since Go read it (Go reads and retries).

if ARGV[2] == "del" then
  local cur = redis.call("HGET", KEYS[1], ARGV[1])
  if not cur then
    return 0
  end
  if cur ~= ARGV[3] then
    return -1
  end
  redis.call("HDEL", KEYS[1], ARGV[1])
  redis.call("HDEL", KEYS[2], ARGV[1])
else
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
  redis.call("HSET", KEYS[2], ARGV[1], ARGV[4])
end
-- The channel's events are numbered so a node can tell it missed some
-- (PubSub drops what is sent while a node reconnects) and read them from
-- history. A new counter starts at Redis's time in microseconds, so after
-- Redis lost the counter the numbers still go up.
local serial = redis.call("INCR", KEYS[4])
if serial == 1 then
  local t = redis.call("TIME")
  serial = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call("SET", KEYS[4], string.format("%d", serial))
end
redis.call("PEXPIRE", KEYS[4], ARGV[7])
local payload = string.format("%d", serial) .. " " .. ARGV[5]
redis.call("LPUSH", KEYS[3], payload)
redis.call("LTRIM", KEYS[3], 0, tonumber(ARGV[6]) - 1)
redis.call("PEXPIRE", KEYS[3], ARGV[7])
redis.call("PUBLISH", ARGV[8], payload)
return 1
