-- publish.lua appends one event to a channel and announces it, atomically:
-- Redis runs a script to completion before any other command, so offsets
-- are dense, history and live delivery agree, and no reader sees a half
-- written event.
--
-- KEYS[1] meta hash {epoch, top, gen} KEYS[2] history stream
-- ARGV[1] epoch to use if the channel has none (fresh random, from Go)
-- ARGV[2] history size (exact MAXLEN)
-- ARGV[3] history TTL in milliseconds
-- ARGV[4] PubSub channel
-- ARGV[5] event type                 ARGV[6] event data (JSON, may be empty)
--
-- Returns the encoded event: "<epoch>-<offset> <unix µs> <len(type)> <type><data>".
-- The stream entry and the PubSub message carry the same text, so one
-- decoder serves replay and live delivery.

-- The dataset's generation. A Redis that lost or rolled back writes has
-- either restarted (run_id changes on every start, and a start may load an
-- old snapshot) or been promoted from a replica that may lag (master_replid
-- changes on every promotion). Then the stored top may be behind offsets
-- already handed out, and reusing them would give two events one cursor.
-- Any change starts a new epoch: a clean restart costs subscribers one
-- resync, a rollback never costs them a silent one.
local function info(section, field)
  return string.match(redis.call('INFO', section), field .. ':(%w+)') or ''
end
local gen = info('server', 'run_id') .. ':' .. info('replication', 'master_replid')

local meta = redis.call('HMGET', KEYS[1], 'epoch', 'gen')
local epoch = meta[1]
if not epoch or meta[2] ~= gen then
  -- A new epoch. A stream left without its meta (e.g. evicted separately)
  -- belongs to a history nobody can name any more, and its ids would be
  -- ahead of the new offsets; a stream of another generation holds events
  -- whose cursors may already name others.
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'gen', gen)
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
