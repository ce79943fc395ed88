-- setcursor.lua stores a channel's mirrored position, never moving it
-- backwards within one epoch: two nodes may briefly mirror one channel
-- (a lock expired mid-publish), and the slower one must not undo the
-- faster one's progress.
--
-- KEYS[1] cursor key
-- ARGV[1] epoch     ARGV[2] offset     ARGV[3] TTL in milliseconds
--
-- Returns 1 if stored, 0 if the stored cursor was already at or past it.
local cur = redis.call('GET', KEYS[1])
if cur then
  local epoch, offset = string.match(cur, '^(.*)-(%d+)$')
  if epoch == ARGV[1] and tonumber(offset) >= tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '-' .. ARGV[2], 'PX', ARGV[3])
return 1
