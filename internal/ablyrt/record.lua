-- record.lua remembers the outcome of one msgSerial of a connection and
-- keeps only the connection's highest maxOutcomes serials, whatever order
-- they come in: a resend after a resume repeats the latest in-flight
-- serials, never old ones, and a client numbering oddly cannot grow the
-- hash past the bound.
--
-- KEYS[1] outcomes (hash: msgSerial -> outcome JSON)
-- KEYS[2] serial index (sorted set: member and score msgSerial)
-- KEYS[3] alive key
-- ARGV[1] msgSerial, ARGV[2] outcome JSON, ARGV[3] TTL in ms, ARGV[4] maxOutcomes
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return 0
