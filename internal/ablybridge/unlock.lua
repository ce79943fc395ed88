-- unlock.lua releases a channel's bridge lock only if owner holds it, so a
-- node whose lock expired cannot release the next holder's.
--
-- KEYS[1] lock key     ARGV[1] owner
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
