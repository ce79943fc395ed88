-- mark.lua sets a channel's pending mark to the server's clock, so every
-- node stamps marks from one clock and mark ages agree across nodes.
--
-- KEYS[1] pending set (sorted set: member channel, score mark in Unix ms)
-- ARGV[1] channel
--
-- Returns the mark.
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
return ms
