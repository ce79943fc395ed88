-- hold.lua records which transport holds a connection and keeps the
-- connection resumable, in one step, so two nodes cannot interleave.
--
-- KEYS[1] alive key ("h:<holder nonce>", "h:" for none; "1" from older nodes)
-- KEYS[2] outcomes hash, KEYS[3] serial index (their TTLs follow the alive key's)
-- ARGV[1] mode:
--   "hold"     the caller's transport holds it from now on (CONNECTED)
--   "refresh"  extend the TTL if the caller still holds it, or nothing is
--              recorded (a store that lost it): returns 1, else 0
--   "release"  the caller's transport ended: no holder, unless another
--              holds it already (then nothing changes)
-- ARGV[2] "h:<caller's holder nonce>", ARGV[3] TTL in ms
local mode, mine, ttl = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('GET', KEYS[1])
local free = (not cur) or cur == 'h:' or cur == '1'
if mode ~= 'hold' and not free and cur ~= mine then
  return 0
end
local value = mine
if mode == 'release' then
  value = 'h:'
end
redis.call('SET', KEYS[1], value, 'PX', ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
