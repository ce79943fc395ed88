-- lock.lua takes a channel's bridge lock, or extends it for its owner.
--
-- KEYS[1] lock key     ARGV[1] owner     ARGV[2] TTL in milliseconds
--
-- Returns 1 if owner holds the lock now, 0 if another owner does.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
