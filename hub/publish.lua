-- publish.lua appends a batch of events to their channels and announces
-- each, atomically: Redis runs a script to completion before any other
-- command, so offsets are dense, history and live delivery agree, and no
-- reader sees a half written event. Events are applied in the order given,
-- so a channel's events in one batch take consecutive offsets in that
-- order. Go sends one call per batch of concurrent publishes (on a Cluster,
-- one per hash slot, as a script's keys must share one).
--
-- KEYS[2i-1] meta hash {epoch, top, gen} of event i
-- KEYS[2i]   history stream of event i
-- ARGV[1] history size (exact MAXLEN)
-- ARGV[2] history TTL in milliseconds
-- then five per event i, from ARGV[5i-2]:
--   epoch to use if the channel has none (fresh random, from Go),
--   PubSub channel, event type, event data (JSON, may be empty),
--   origin (encoded by Go, see encodeOrigin; empty for none)
--
-- Returns one encoded event per input event, in order: the origin, then
-- "<epoch>-<offset> <unix µs> <len(type)> <type><data>".
-- The stream entry keeps the event in field "e" and a non-empty origin in
-- field "o", so entries without an origin look as they always did (and
-- as entries of older versions do); history.lua joins them back into
-- what the PubSub message carries, so one decoder serves replay and live
-- delivery.

-- The dataset's generation. A Redis that lost or rolled back writes has
-- either restarted (run_id changes on every start, and a start may load an
-- old snapshot) or been promoted from a replica that may lag (master_replid
-- changes on every promotion). Then the stored top may be behind offsets
-- already handed out, and reusing them would give two events one cursor.
-- Any change starts a new epoch: a clean restart costs subscribers one
-- resync, a rollback never costs them a silent one. Read once per call:
-- neither can change while a script runs, so the whole batch is checked
-- against the dataset it writes to.
local function info(section, field)
  return string.match(redis.call('INFO', section), field .. ':(%w+)') or ''
end
local gen = info('server', 'run_id') .. ':' .. info('replication', 'master_replid')

-- The server clock, so every node stamps events from one clock; one
-- reading serves the batch, as the script runs in one instant of Redis.
local now = redis.call('TIME')
local ts = now[1] .. string.format('%06d', tonumber(now[2]))

local size, ttl = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS / 2 do
  local meta, stream, a = KEYS[2 * i - 1], KEYS[2 * i], 5 * i - 2
  local m = redis.call('HMGET', meta, 'epoch', 'gen')
  local epoch = m[1]
  if not epoch or m[2] ~= gen then
    -- A new epoch. A stream left without its meta (e.g. evicted separately)
    -- belongs to a history nobody can name any more, and its ids would be
    -- ahead of the new offsets; a stream of another generation holds events
    -- whose cursors may already name others.
    epoch = ARGV[a]
    redis.call('DEL', meta, stream)
    redis.call('HSET', meta, 'epoch', epoch, 'gen', gen)
  end
  local top = redis.call('HINCRBY', meta, 'top', 1)
  local typ = ARGV[a + 2]
  local ev = epoch .. '-' .. top .. ' ' .. ts .. ' ' .. #typ .. ' ' .. typ .. ARGV[a + 3]
  local origin = ARGV[a + 4]
  -- Stream id "0-<offset>" makes "events after offset n" a plain XRANGE.
  if origin == '' then
    redis.call('XADD', stream, 'MAXLEN', size, '0-' .. top, 'e', ev)
  else
    redis.call('XADD', stream, 'MAXLEN', size, '0-' .. top, 'e', ev, 'o', origin)
    ev = origin .. ev
  end
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PUBLISH', ARGV[a + 1], ev)
  out[i] = ev
end
return out
