-- redis_forget.lua drops a channel the sweeper found without members from
-- the set of channels it walks, unless the channel was touched recently:
-- Apply stamps the channel there before it adds a member, so only a
-- channel no Apply is adding to can be dropped.
--
-- KEYS[1] channels sorted set (score: last ENTER/UPDATE, ms)
-- ARGV[1] channel, ARGV[2] cutoff (ms)

local score = redis.call("ZSCORE", KEYS[1], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then
  redis.call("ZREM", KEYS[1], ARGV[1])
end
return 1
