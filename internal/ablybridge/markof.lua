-- markof.lua reads a channel's pending mark together with the server's
-- clock, so the mark's age is measured on the clock that wrote it.
--
-- KEYS[1] pending set     ARGV[1] channel
--
-- Returns {} when the channel is not pending, else {mark, now} in Unix ms.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return {}
end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {tonumber(score), ms}
