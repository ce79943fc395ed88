-- admit.lua: admits a new session to its facility's set of open sessions
-- KEYS[1] (a sorted set: session id -> deadline, ms), unless the facility
-- already has ARGV[2] of them (0: no cap). Members whose deadline is at or
-- before ARGV[1] (now) are dropped first, so a node that dies between
-- admitting and creating a session holds its slot only until that
-- session's deadline, never forever. ARGV[3] id, ARGV[4] deadline (ms),
-- ARGV[5] retention after the deadline (ms). Replies 1 if admitted, else 0.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local cap = tonumber(ARGV[2])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(top[2]) + tonumber(ARGV[5])))
return 1
