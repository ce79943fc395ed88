-- publish.lua appends one event to a channel and announces it, atomically:
-- Redis runs a script to completion before any other command, so offsets
-- are dense, history and live delivery agree, and no reader sees a half
-- written event.
--
-- KEYS[1] meta hash {epoch, top}     KEYS[2] history stream
-- ARGV[1] epoch to use if the channel has none (fresh random, from Go)
-- ARGV[2] history size (exact MAXLEN)
-- ARGV[3] history TTL in milliseconds
-- ARGV[4] PubSub channel
-- ARGV[5] event type                 ARGV[6] event data (JSON, may be empty)
--
-- Returns the encoded event: "<epoch>-<offset> <unix µs> <len(type)> <type><data>".
-- The stream entry and the PubSub message carry the same text, so one
-- decoder serves replay and live delivery.

local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- A new epoch. A stream left without its meta (e.g. evicted separately)
  -- belongs to a history nobody can name any more, and its ids would be
  -- ahead of the new offsets.
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)

-- The server clock, so every node stamps events from one clock.
local now = redis.call('TIME')
local ts = now[1] .. string.format('%06d', tonumber(now[2]))

local typ = ARGV[5]
local ev = epoch .. '-' .. top .. ' ' .. ts .. ' ' .. #typ .. ' ' .. typ .. ARGV[6]

-- Stream id "0-<offset>" makes "events after offset n" a plain XRANGE.
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. top, 'e', ev)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ev)
return ev
