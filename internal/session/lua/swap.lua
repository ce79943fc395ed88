-- swap.lua: compare-and-set of the string KEYS[1]. If its value is ARGV[1]
-- ('' = missing), sets it to ARGV[2] expiring at ARGV[3] (ms), or deletes it
-- when ARGV[2] is ''. Replies 1 if it changed the key, else 0. Used for the
-- facility + encounter index, so two desktops creating a session for one
-- encounter at once end up sharing one.
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return 1
