-- settle.lua removes a channel from the pending set only if its mark is
-- still the one the bridge read before draining: a newer mark means a
-- publish began since, and the channel must stay pending for it.
--
-- KEYS[1] pending set     ARGV[1] channel     ARGV[2] mark read earlier
--
-- Returns 1 if removed, 0 if not.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
